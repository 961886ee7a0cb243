{{/*
Names and labels. Component templates pass a dict: (dict "root" $ "component" "image-processor").
*/}}

{{- define "pictureday.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pictureday.fullname" -}}
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

{{- define "pictureday.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pictureday.labels" -}}
helm.sh/chart: {{ include "pictureday.chart" . }}
{{ include "pictureday.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pictureday
{{- end }}

{{- define "pictureday.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pictureday.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* <fullname>-<component>, e.g. pictureday-image-processor */}}
{{- define "pictureday.componentName" -}}
{{- printf "%s-%s" (include "pictureday.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pictureday.componentLabels" -}}
{{ include "pictureday.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pictureday.componentSelectorLabels" -}}
{{ include "pictureday.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* <registry>/<repository>-<component>:<tag> */}}
{{- define "pictureday.image" -}}
{{- $image := .root.Values.image }}
{{- $repository := printf "%s-%s" $image.repository .component }}
{{- if $image.registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $repository }}
{{- end }}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}

{{- define "pictureday.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pictureday.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pictureday.configMapName" -}}
{{- printf "%s-config" (include "pictureday.fullname" .) }}
{{- end }}

{{- define "pictureday.secretName" -}}
{{- default (printf "%s-secrets" (include "pictureday.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* "true" when the services read NATS_URL (with its credentials) from the Secret. */}}
{{- define "pictureday.natsUrlInSecret" -}}
{{- if .Values.secrets.existingSecret }}
{{- if .Values.secrets.natsUrlInExistingSecret }}true{{ end }}
{{- else if .Values.secrets.natsUrl }}true{{ end }}
{{- end }}

{{/* Rolls every pod when the settings or the chart's own Secret change. */}}
{{- define "pictureday.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* Settings from the ConfigMap and Secret, then the component's own. Only the components
     with a database (ingest, roster, reporting) get its URL and the operator token; only those
     with storage get the S3 keys: the matcher and the image-processors hold no database
     credentials. */}}
{{- define "pictureday.env" -}}
{{- $root := .root }}
{{- $values := .values }}
{{- $component := .component }}
{{- $database := has $component (list "ingest" "roster" "reporting") }}
{{- $storage := has $component (list "ingest" "roster" "image-processor") }}
{{- $secret := include "pictureday.secretName" $root }}
{{- $keys := $root.Values.secrets.keys -}}
- name: PICTUREDAY_INSTANCE
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if include "pictureday.natsUrlInSecret" $root }}
- name: NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.natsUrl }}
{{- end }}
{{- if $database }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.databaseUrl }}
- name: PICTUREDAY_OPERATOR_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.operatorToken }}
{{- end }}
{{- if and $storage (or $root.Values.secrets.existingSecret $root.Values.secrets.awsAccessKeyId) }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.awsAccessKeyId }}
      optional: true
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $keys.awsSecretAccessKey }}
      optional: true
{{- end }}
{{- range $name, $value := $values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
