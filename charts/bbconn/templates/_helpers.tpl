{{/* The chart's name, overridable. */}}
{{- define "bbconn.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "bbconn.fullname" -}}
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

{{- define "bbconn.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "bbconn.labels" -}}
helm.sh/chart: {{ include "bbconn.chart" . }}
{{ include "bbconn.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: bbconn
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "bbconn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bbconn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bbconn.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bbconn.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bbconn.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The rules the operator needs on BitbucketConnections, their Secrets and ConfigMaps, and
     Events: the same in the ClusterRole and in each per-namespace Role. */}}
{{- define "bbconn.rules" -}}
- apiGroups: [bbconn.dev]
  resources: [bitbucketconnections]
  verbs: [get, list, watch]
- apiGroups: [bbconn.dev]
  resources: [bitbucketconnections/status]
  verbs: [get, patch]
# Secrets and ConfigMaps: watched as metadata only; a connection's own are fetched with get.
- apiGroups: [""]
  resources: [secrets, configmaps]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
