{{/* The one place that knows this chart's names, labels and security defaults. */}}

{{/* "soa-operator" for the intended release name; otherwise "<release>-soa-operator". */}}
{{- define "soaop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "soaop.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Installed by Helm, so managed-by is Helm here (unlike the tenant chart, applied by the operator). */}}
{{- define "soaop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: soa
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "soaop.selectorLabels" . }}
{{- end -}}

{{- define "soaop.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Port of kopf's liveness endpoint (--liveness). */}}
{{- define "soaop.healthPort" -}}8080{{- end -}}

{{- define "soaop.uid" -}}10001{{- end -}}
