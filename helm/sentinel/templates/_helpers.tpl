{{- define "sentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sentinel.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sentinel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sentinel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sentinel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The KDL the chart's ConfigMap holds: config.kdl from the values, else files/config.kdl. */}}
{{- define "sentinel.configKdl" -}}
{{- if .Values.config.kdl }}
{{- tpl .Values.config.kdl . }}
{{- else }}
{{- tpl (.Files.Get "files/config.kdl") . }}
{{- end }}
{{- end }}

{{- define "sentinel.configMapName" -}}
{{- default (include "sentinel.fullname" .) .Values.config.existingConfigMap }}
{{- end }}

{{- define "sentinel.image" -}}
{{- printf "%s:%s" .repository (default .defaultTag .tag) }}
{{- end }}

{{/* The metrics port is in the Service when asked for, or when a ServiceMonitor scrapes it. */}}
{{- define "sentinel.serviceMonitor" -}}
{{- if and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{- define "sentinel.metricsInService" -}}
{{- if and .Values.metrics.enabled (or .Values.service.metricsEnabled (include "sentinel.serviceMonitor" .)) }}true{{ end }}
{{- end }}

{{/* The sentinel-waf sidecar and its socket volume: the WAF on, not in the gateway process. */}}
{{- define "sentinel.wafSidecar" -}}
{{- if and .Values.waf.enabled (not .Values.waf.inProcess) }}true{{ end }}
{{- end }}
