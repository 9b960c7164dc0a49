/**
 * AccessReviewApi on @kubernetes/client-node, for the controller (which has a KubeConfig and
 * the shared connection pool already).
 */
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type {
  AccessReviewApi,
  SubjectAccessReviewSpec,
  SubjectAccessReviewStatus,
  TokenReviewStatus,
} from '../../ops/metrics-auth.js';
import { makeApiClient } from './connections.js';

/** TokenReviews and SubjectAccessReviews through client-node on `kc`'s pooled connections. */
export function k8sAccessReviewApi(kc: KubeConfig): AccessReviewApi {
  const authn = makeApiClient(kc, AuthenticationV1Api);
  const authz = makeApiClient(kc, AuthorizationV1Api);
  return {
    async tokenReview(token: string): Promise<TokenReviewStatus> {
      const r = await authn.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      });
      return r.status ?? {};
    },
    async subjectAccessReview(spec: SubjectAccessReviewSpec): Promise<SubjectAccessReviewStatus> {
      const r = await authz.createSubjectAccessReview({
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
      });
      return r.status ?? {};
    },
  };
}
