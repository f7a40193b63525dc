{{/* Name of every object, from the release. */}}
{{- define "lanes.fullname" -}}
{{- printf "%s-lanes" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "lanes.labels" -}}
app.kubernetes.io/name: lanes
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lanes.selectorLabels" -}}
app.kubernetes.io/name: lanes
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lanes.webhookService" -}}
{{- printf "%s-webhook" (include "lanes.fullname" .) -}}
{{- end -}}

{{- define "lanes.webhookConfiguration" -}}
{{- printf "%s-%s" (include "lanes.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "lanes.image" -}}
{{- printf "%s:%s" .Values.manager.image.repository (default .Chart.AppVersion .Values.manager.image.tag) -}}
{{- end -}}

{{- define "lanes.validatingWebhookConfiguration" -}}
{{- printf "%s-%s-lanes" (include "lanes.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
The namespaces both webhooks serve: not the release's own, not webhook.excludeNamespaces, only
manager.watchNamespaces when set (the manager caches pods of those only), and the user's selector.
*/}}
{{- define "lanes.webhookNamespaceSelector" -}}
{{- with .Values.webhook.namespaceSelector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
  - {{ .Release.Namespace }}
  {{- range .Values.webhook.excludeNamespaces }}
  - {{ . }}
  {{- end }}
{{- with .Values.manager.watchNamespaces }}
# lanes-manager caches pods of these namespaces only (manager.watchNamespaces).
- key: kubernetes.io/metadata.name
  operator: In
  values:
  {{- range . }}
  - {{ . }}
  {{- end }}
{{- end }}
{{- with .Values.webhook.namespaceSelector.matchExpressions }}
{{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}
