/**
 * Authentication and authorization of /metrics scrapes, the way controller-runtime's metrics
 * server does it (pkg/metrics/filters.WithAuthenticationAndAuthorization): the bearer token
 * goes to a TokenReview, the user it names to a SubjectAccessReview for the non-resource URL
 * and verb, and both answers are cached for a short while.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';

/** The user a TokenReview names (authentication.k8s.io/v1 UserInfo). */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: UserInfo;
  error?: string;
}

export interface SubjectAccessReviewSpec {
  user?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
  nonResourceAttributes: { path: string; verb: string };
}

export interface SubjectAccessReviewStatus {
  allowed?: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

/**
 * Creates TokenReviews (authentication.k8s.io/v1) and SubjectAccessReviews
 * (authorization.k8s.io/v1) on the API server and resolves with their status. Rejects when the
 * API server cannot be asked or refuses the request (e.g. 403: this process's own identity may
 * not create reviews: the RBAC in deploy/base/metrics-rbac.yaml is missing).
 */
export interface AccessReviewApi {
  tokenReview(token: string): Promise<TokenReviewStatus>;
  subjectAccessReview(spec: SubjectAccessReviewSpec): Promise<SubjectAccessReviewStatus>;
}

/** The answer to one request: serve it (200) or the status to refuse it with and why. */
export type AccessDecision =
  | { status: 200; user: string }
  | { status: 401; reason: string }
  | { status: 403; user: string; reason: string }
  | { status: 429; reason: string }
  | { status: 500; reason: string };

export interface MetricsAuthorizerComponents {
  api: AccessReviewApi;
  /** Monotonic milliseconds (cache expiry). Default performance.now. */
  now?: () => number;
  log?: Logger;
}

export interface MetricsAuthorizerInit {
  /** How long an answer (allowed or not) is reused. Default 10 000 ms. */
  ttlMs?: number;
  /** Answers kept per cache (tokens, access reviews); the least recently used go first. Default 1000. */
  maxEntries?: number;
  /**
   * Reviews waiting for the API server at once; a request that would need one more is refused
   * with 429 at once, so that a flood of made-up tokens cannot turn into a flood of reviews.
   * Default 8.
   */
  maxInFlight?: number;
}

/** Tokens longer than this are refused without a review (service-account JWTs are ~1 KB). */
const MAX_TOKEN_LENGTH = 8192;

/** A bounded map whose entries expire; reads refresh recency, not expiry. */
class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (e.expires <= this.now()) return undefined;
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.max) break;
      this.entries.delete(k);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

type Authn = { ok: true; user: UserInfo } | { ok: false };
type Authz = { allowed: boolean; reason: string };

class TooManyReviews extends Error {
  override readonly name = 'TooManyReviews';
}

/**
 * Decides whether a request to a non-resource path may be served: 401 without a bearer token
 * or with one the API server does not authenticate, 403 when the authenticated user may not
 * `verb` the path (RBAC nonResourceURLs), 200 otherwise. Answers are cached for `ttlMs`
 * (tokens by their SHA-256, never in clear), so a revoked binding or token stops working
 * within that time. 429 when too many reviews are in flight; 500 when the API server could
 * not answer (never cached).
 */
export class MetricsAuthorizer {
  private readonly tokens: TtlCache<Authn>;
  private readonly reviews: TtlCache<Authz>;
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly maxInFlight: number;

  constructor(
    private readonly c: MetricsAuthorizerComponents,
    init: MetricsAuthorizerInit = {},
  ) {
    const now = c.now ?? (() => performance.now());
    const ttl = init.ttlMs ?? 10_000;
    const max = init.maxEntries ?? 1000;
    this.tokens = new TtlCache(ttl, max, now);
    this.reviews = new TtlCache(ttl, max, now);
    this.maxInFlight = init.maxInFlight ?? 8;
  }

  /** Cached answers (tokens, access reviews), for tests and diagnostics. */
  cacheSizes(): { tokens: number; reviews: number } {
    return { tokens: this.tokens.size, reviews: this.reviews.size };
  }

  /** `authorization` is the request's Authorization header; `verb` e.g. get, `path` e.g. /metrics. */
  async decide(authorization: string | undefined, verb: string, path: string): Promise<AccessDecision> {
    const m = /^Bearer +(\S+)\s*$/i.exec(authorization ?? '');
    const token = m?.[1];
    if (!token) return { status: 401, reason: 'no bearer token' };
    if (token.length > MAX_TOKEN_LENGTH) return { status: 401, reason: 'token too long' };
    let user: UserInfo;
    try {
      const authn = await this.authenticate(token);
      if (!authn.ok) return { status: 401, reason: 'token not authenticated' };
      user = authn.user;
    } catch (err) {
      return this.failed('authentication', err);
    }
    const name = user.username ?? '';
    try {
      const authz = await this.authorize(user, verb, path);
      if (!authz.allowed) return { status: 403, user: name, reason: authz.reason };
    } catch (err) {
      return this.failed('authorization', err);
    }
    return { status: 200, user: name };
  }

  private failed(what: string, err: unknown): AccessDecision {
    if (err instanceof TooManyReviews) return { status: 429, reason: err.message };
    this.c.log?.warn({ err }, `metrics ${what} failed: the API server did not answer the review`);
    return { status: 500, reason: `${what} failed` };
  }

  private async authenticate(token: string): Promise<Authn> {
    const key = createHash('sha256').update(token).digest('base64');
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const answer = await this.once(`t:${key}`, async (): Promise<Authn> => {
      const s = await this.c.api.tokenReview(token);
      return s.authenticated === true && s.user ? { ok: true, user: s.user } : { ok: false };
    });
    this.tokens.set(key, answer);
    return answer;
  }

  private async authorize(user: UserInfo, verb: string, path: string): Promise<Authz> {
    const spec: SubjectAccessReviewSpec = {
      ...(user.username !== undefined ? { user: user.username } : {}),
      ...(user.uid !== undefined ? { uid: user.uid } : {}),
      ...(user.groups ? { groups: user.groups } : {}),
      ...(user.extra ? { extra: user.extra } : {}),
      nonResourceAttributes: { path, verb },
    };
    const key = JSON.stringify(spec);
    const cached = this.reviews.get(key);
    if (cached) return cached;
    const answer = await this.once(`s:${key}`, async (): Promise<Authz> => {
      const s = await this.c.api.subjectAccessReview(spec);
      if (s.evaluationError && s.allowed !== true)
        this.c.log?.warn({ error: s.evaluationError }, 'metrics authorization: evaluation error');
      return { allowed: s.allowed === true && s.denied !== true, reason: s.reason ?? '' };
    });
    this.reviews.set(key, answer);
    return answer;
  }

  /** Runs `fn` once for concurrent callers with the same key, within the in-flight bound. */
  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running as Promise<T>;
    if (this.inFlight.size >= this.maxInFlight)
      return Promise.reject(new TooManyReviews(`${this.inFlight.size} reviews in flight; try again`));
    const p = fn().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }
}
