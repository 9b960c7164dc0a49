/**
 * AccessReviewApi on the agent's REST client (no @kubernetes/client-node: docs/adr/0007).
 */
import type {
  AccessReviewApi,
  SubjectAccessReviewSpec,
  SubjectAccessReviewStatus,
  TokenReviewStatus,
} from '../../ops/metrics-auth.js';
import type { RestClient } from './rest-client.js';

/** TokenReviews and SubjectAccessReviews through `client` (a RestClient of its own is best: see agent-run). */
export function restAccessReviewApi(client: RestClient): AccessReviewApi {
  return {
    async tokenReview(token: string): Promise<TokenReviewStatus> {
      const r = await client.request<{ status?: TokenReviewStatus }>(
        'POST',
        '/apis/authentication.k8s.io/v1/tokenreviews',
        { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } },
      );
      return r?.status ?? {};
    },
    async subjectAccessReview(spec: SubjectAccessReviewSpec): Promise<SubjectAccessReviewStatus> {
      const r = await client.request<{ status?: SubjectAccessReviewStatus }>(
        'POST',
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        { body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec } },
      );
      return r?.status ?? {};
    },
  };
}
