{{/*
Helpers of the web UI (templates/ui.yaml). Its own component label, so neither the operator's
Deployment nor its metrics Service ever selects a UI pod.
*/}}
{{- define "glassbox.ui.selectorLabels" -}}
app.kubernetes.io/name: {{ include "glassbox.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ui
{{- end }}

{{- define "glassbox.ui.labels" -}}
helm.sh/chart: {{ include "glassbox.chart" . }}
{{ include "glassbox.ui.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: glassbox
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The store the UI reads: the chart's default artifact store, s3://<bucket>/<prefix>.
*/}}
{{- define "glassbox.ui.store" -}}
{{- $_ := required "ui.enabled needs storage.endpoint: the UI reads the chart's artifact store" .Values.storage.endpoint }}
{{- if .Values.storage.prefix }}
{{- printf "s3://%s/%s" .Values.storage.bucket .Values.storage.prefix }}
{{- else }}
{{- printf "s3://%s" .Values.storage.bucket }}
{{- end }}
{{- end }}
