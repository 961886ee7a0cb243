{{/*
The bodies every component's templates share. Each takes
  (dict "root" $ "component" "<name>" "values" .Values.<component>)
plus, for the Deployment, "autoscaled" (true when an HPA or a ScaledObject owns the replica count).
*/}}

{{- define "pictureday.deployment" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "pictureday.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pictureday.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "pictureday.componentSelectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      annotations:
        {{- include "pictureday.checksums" $root | nindent 8 }}
        {{- with (merge (dict) ($v.podAnnotations | default dict) $root.Values.podAnnotations) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "pictureday.componentSelectorLabels" $ctx | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "pictureday.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .component }}
          image: {{ include "pictureday.image" $ctx | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
            {{- if and (eq .component "ingest") $root.Values.sftp.enabled }}
            - name: sftp
              containerPort: {{ $root.Values.sftp.port }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "pictureday.configMapName" $root }}
          env:
            {{- include "pictureday.env" (dict "root" $root "values" $v "component" .component) | nindent 12 }}
            {{- with .extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- if and (eq .component "ingest") $root.Values.sftp.enabled }}
            - name: PICTUREDAY_SFTP_LISTEN
              value: {{ printf "0.0.0.0:%v" $root.Values.sftp.port | quote }}
            - name: PICTUREDAY_SFTP_QUIET_SECS
              value: {{ $root.Values.sftp.quietSecs | quote }}
            {{- if $root.Values.sftp.hostKeySecret }}
            - name: PICTUREDAY_SFTP_HOST_KEY_FILE
              value: /etc/pictureday/sftp/host_key
            {{- end }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.startup.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            - name: spool
              mountPath: {{ $root.Values.spool.mountPath }}
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.storage.persistence.existingClaim }}
            - name: photos
              mountPath: {{ $root.Values.storage.persistence.mountPath }}
            {{- end }}
            {{- if and (eq .component "ingest") $root.Values.sftp.enabled $root.Values.sftp.hostKeySecret }}
            - name: sftp-host-key
              mountPath: /etc/pictureday/sftp
              readOnly: true
            {{- end }}
      volumes:
        - name: spool
          emptyDir:
            {{- with $root.Values.spool.medium }}
            medium: {{ . }}
            {{- end }}
            sizeLimit: {{ $root.Values.spool.sizeLimit }}
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if $root.Values.storage.persistence.existingClaim }}
        - name: photos
          persistentVolumeClaim:
            claimName: {{ $root.Values.storage.persistence.existingClaim }}
        {{- end }}
        {{- if and (eq .component "ingest") $root.Values.sftp.enabled $root.Values.sftp.hostKeySecret }}
        - name: sftp-host-key
          secret:
            secretName: {{ $root.Values.sftp.hostKeySecret }}
            defaultMode: 0400
            items:
              - key: host_key
                path: host_key
        {{- end }}
      {{- with ($v.nodeSelector | default $root.Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.affinity | default $root.Values.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.tolerations | default $root.Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{- define "pictureday.service" -}}
{{- $root := .root }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "pictureday.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pictureday.componentLabels" $ctx | nindent 4 }}
  {{- with $root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $root.Values.service.type }}
  selector:
    {{- include "pictureday.componentSelectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http
      port: {{ $root.Values.service.port }}
      targetPort: http
      protocol: TCP
{{- end }}

{{- define "pictureday.hpa" -}}
{{- $root := .root }}
{{- $a := .values.autoscaling }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "pictureday.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pictureday.componentLabels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "pictureday.componentName" $ctx }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
{{- end }}

{{- define "pictureday.pdb" -}}
{{- $root := .root }}
{{- $p := .values.pdb }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "pictureday.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pictureday.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if hasKey $p "minAvailable" }}
  minAvailable: {{ $p.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $p.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "pictureday.componentSelectorLabels" $ctx | nindent 6 }}
{{- end }}
