{{/*
Shared pieces of the chart's templates. Object names are fixed, as in deploy/ (one release per cluster: the
CRDs, the host paths and the Lease are cluster-wide anyway), so docs, alerts and kubectl commands name the
same objects whichever way whereabouts-ts was installed.
*/}}

{{/* The labels of every object: the kustomize base's part-of, and Helm's own. */}}
{{- define "whereabouts-ts.labels" -}}
app.kubernetes.io/part-of: whereabouts-ts
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* A component's selector labels (also on its pods): name and component, as in deploy/. */}}
{{- define "whereabouts-ts.selector" -}}
app.kubernetes.io/name: whereabouts-ts
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* The one image every component runs. */}}
{{- define "whereabouts-ts.image" -}}
image: {{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end }}

{{/* The settings' data; the ConfigMap's name carries its hash, as kustomize's configMapGenerator does. */}}
{{- define "whereabouts-ts.settingsData" -}}
gc-grace-period: {{ .Values.settings.gcGracePeriod | quote }}
gc-pushgateway-url: {{ .Values.settings.gcPushgatewayUrl | quote }}
log-level: {{ .Values.settings.logLevel | quote }}
{{- end }}

{{- define "whereabouts-ts.settingsName" -}}
whereabouts-settings-{{ include "whereabouts-ts.settingsData" . | sha256sum | trunc 10 }}
{{- end }}

{{/*
The scheduling and security values of a pod: (dict "values" .Values.<component> "root" $). Only what is set
is written.
*/}}
{{- define "whereabouts-ts.podPlacement" -}}
{{- $v := .values -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A container's resources and securityContext from its component's values. */}}
{{- define "whereabouts-ts.containerLimits" -}}
{{- with .resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* An env entry from the settings ConfigMap. */}}
{{- define "whereabouts-ts.setting" -}}
- name: {{ .name }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "whereabouts-ts.settingsName" .root }}
      key: {{ .key }}
{{- end }}
