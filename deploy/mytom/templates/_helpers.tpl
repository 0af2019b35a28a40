{{/* The release's name for every resource, at most 21 characters: CronJob names add a job's. */}}
{{- define "mytom.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 21 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 21 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mytom.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mytom.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Hook annotations of the settings: made before the migration hook Job, which needs them. */}}
{{- define "mytom.beforeMigrations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{- define "mytom.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "mytom.fullname" .)) -}}
{{- end -}}

{{/* What every container of the chart shares: the image, its settings, a writable /tmp, home and DATA_DIR. */}}
{{- define "mytom.container" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "mytom.fullname" . }}-config
  - secretRef:
      name: {{ include "mytom.secretName" . }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  # The user's home: libraries keep caches there (matplotlib's font cache), as compose's tmpfs.
  - name: home
    mountPath: /home/tom
  - name: data
    mountPath: /data
  # The alert streams' declaration, which the worker runs: the folder, not the file, as the
  # kubelet replaces a ConfigMap's files by renaming (the worker sees it and loads the edit).
  - name: streams
    mountPath: /etc/tom/streams
    readOnly: true
{{- end -}}

{{- define "mytom.pod" -}}
# The TOM never calls the Kubernetes API: no token for a break-in to use.
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir: {}
  - name: home
    emptyDir: {}
  - name: streams
    configMap:
      name: {{ include "mytom.fullname" . }}-streams
  - name: data
    {{- if .Values.data.existingClaim }}
    persistentVolumeClaim:
      claimName: {{ .Values.data.existingClaim }}
    {{- else }}
    emptyDir: {}
    {{- end }}
{{- end -}}

{{/* The checksum of the settings, so that pods roll when they change. */}}
{{- define "mytom.configChecksum" -}}
{{- list .Values.config .Values.secrets .Values.existingSecret | toJson | sha256sum -}}
{{- end -}}
