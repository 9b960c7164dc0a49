/**
 * ControllerMetrics' own bookkeeping: the holder series follows the holder, a VIP without a
 * holder counts the time since it had one (on the injected clock), and a deleted VIP or
 * HACluster leaves no series behind.
 */
import { describe, expect, it } from '@jest/globals';
import { ControllerMetrics } from '../../../src/controller/metrics.js';

describe('ControllerMetrics', () => {
  it('counts the time a VIP has had no holder, and forgets deleted VIPs and clusters', async () => {
    let now = 1000;
    const m = new ControllerMetrics({ now: () => now });
    const text = () => m.registry.metrics();
    m.setQuorum('ns/web', { state: 'quorate', have: 3, need: 2 }, 1000);
    m.setHolder('ns/vip1', 'node-a', 'ns/web');
    expect(await text()).toMatch(/^heartline_vip_holder\{vip="ns\/vip1",holder="node-a"\} 1$/m);
    expect(await text()).toMatch(/^heartline_vip_unheld_seconds\{cluster="ns\/web",vip="ns\/vip1"\} 0$/m);
    expect(await text()).toMatch(/^heartline_cluster_dead_seconds\{cluster="ns\/web"\} 1$/m);
    now = 2000;
    m.setHolder('ns/vip1', undefined, 'ns/web');
    now = 4500;
    m.setHolder('ns/vip1', undefined, 'ns/web'); // still none: counted from the first time
    now = 9000;
    expect(await text()).toMatch(/^heartline_vip_unheld_seconds\{cluster="ns\/web",vip="ns\/vip1"\} 7$/m);
    expect(await text()).not.toMatch(/^heartline_vip_holder\{/m);
    m.setHolder('ns/vip1', 'node-b', 'ns/web');
    expect(await text()).toMatch(/^heartline_vip_unheld_seconds\{cluster="ns\/web",vip="ns\/vip1"\} 0$/m);
    expect(await text()).toMatch(/^heartline_vip_holder\{vip="ns\/vip1",holder="node-b"\} 1$/m);
    m.setHolder('ns/vip2', undefined, 'ns/web');
    m.forgetAllVips(); // leadership lost
    expect(await text()).not.toMatch(/vip2/);
    m.forgetVip('ns/vip1');
    m.setQuorum('ns/web', undefined);
    const after = await text();
    expect(after).not.toMatch(/vip1/);
    expect(after).not.toMatch(/^heartline_cluster_(quorate|dead_seconds|quorum_votes)\{/m);
  });

  it('counts reconciles as controller-runtime does, errors starting at 0', async () => {
    const m = new ControllerMetrics();
    m.reconciled('virtualip', 'success', 3);
    m.reconciled('virtualip', 'requeue_after', 1);
    let text = await m.registry.metrics();
    expect(text).toMatch(/^controller_runtime_reconcile_errors_total\{controller="virtualip"\} 0$/m);
    m.reconciled('virtualip', 'error', 2);
    text = await m.registry.metrics();
    expect(text).toMatch(/^controller_runtime_reconcile_errors_total\{controller="virtualip"\} 1$/m);
    expect(text).toMatch(/^controller_runtime_reconcile_total\{controller="virtualip",result="error"\} 1$/m);
    expect(text).toMatch(/^controller_runtime_reconcile_time_seconds_count\{controller="virtualip"\} 3$/m);
    expect(text).toMatch(/^controller_runtime_reconcile_time_seconds_sum\{controller="virtualip"\} 0\.006$/m);
  });
});
