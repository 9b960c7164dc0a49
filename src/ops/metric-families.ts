/**
 * Declares metric families in one Prometheus registry: the agent's and the controller's
 * metrics (agent/metrics.ts, controller/metrics.ts) are lists of these. A group of families
 * (all per VIP, all of the work queue, ...) states its name prefix and its common labels once.
 * A gauge may be read at scrape time (`collect`), so its series follow the state they
 * describe and go with it.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Families whose names start with `prefix` and whose labels start with `G`. */
export interface MetricFamilies<G extends string> {
  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Counter<G | L>;
  /** `collect`, if given, sets the gauge's values at each scrape. */
  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    collect?: (gauge: Gauge<G | L>) => void,
  ): Gauge<G | L>;
  histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames?: readonly L[],
  ): Histogram<G | L>;
}

/**
 * Families registered in `registry` only (so that tests can run several programs in one
 * process), named `prefix` + name, labelled `labelNames` + their own.
 */
export function metricFamilies<G extends string = never>(
  registry: Registry,
  group: { prefix?: string; labelNames?: readonly G[] } = {},
): MetricFamilies<G> {
  const registers = [registry];
  const common = <L extends string>(name: string, help: string, labelNames: readonly L[]) => ({
    name: `${group.prefix ?? ''}${name}`,
    help,
    labelNames: [...(group.labelNames ?? []), ...labelNames],
    registers,
  });
  return {
    counter: (name, help, labelNames = []) => new Counter(common(name, help, labelNames)),
    gauge: <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[] = [],
      collect?: (gauge: Gauge<G | L>) => void,
    ) =>
      new Gauge<G | L>({
        ...common(name, help, labelNames),
        ...(collect
          ? {
              collect(this: Gauge<G | L>) {
                collect(this);
              },
            }
          : {}),
      }),
    histogram: (name, help, buckets, labelNames = []) =>
      new Histogram({ ...common(name, help, labelNames), buckets: [...buckets] }),
  };
}
