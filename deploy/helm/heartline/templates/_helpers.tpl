{{/* Namespace of every namespaced object (agents, controller, Lease, heartline-config). */}}
{{- define "heartline.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* Namespace of the HACluster, its VirtualIPs, Resources and auth Secret. */}}
{{- define "heartline.clusterNamespace" -}}
{{- .Values.cluster.namespace | default (include "heartline.namespace" .) -}}
{{- end -}}

{{/* The image reference: repository@digest, else repository:tag (default appVersion). */}}
{{- define "heartline.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
Labels on every object's metadata. app.kubernetes.io/part-of is the one deploy/base adds
(kustomize `labels`); the others are Helm's usual ones, on metadata only (never in
selectors, so an upgrade can change them).
*/}}
{{- define "heartline.labels" -}}
app.kubernetes.io/part-of: heartline
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The metrics scheme: HTTPS with auth (default), plain HTTP without. */}}
{{- define "heartline.metricsScheme" -}}
{{- if .Values.metrics.auth }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}
