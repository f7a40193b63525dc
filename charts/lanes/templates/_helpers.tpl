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
