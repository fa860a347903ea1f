{{/* Common labels of every object this chart renders. */}}
{{- define "banet.labels" -}}
app.kubernetes.io/name: banet-ops
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of the inference and training pods (banet.gpuPod); the NetworkPolicy selects on them. */}}
{{- define "banet.inferenceSelector" -}}
app.kubernetes.io/name: banet-ops
app.kubernetes.io/component: inference
{{- end -}}

{{/* Labels of the Airflow task pods (KubernetesExecutor workers) of this release. */}}
{{- define "banet.workerSelector" -}}
component: worker
release: {{ .Release.Name }}
{{- end -}}

{{/* image reference "repository:tag[@digest]" from a {repository, tag, digest} block */}}
{{- define "banet.image" -}}
{{- .repository -}}:{{- .tag -}}{{- if .digest -}}@{{- .digest -}}{{- end -}}
{{- end -}}

{{/* Egress rule: to the given CIDRs on one TCP port. Call with (dict "cidrs" LIST "port" N). */}}
{{- define "banet.egressTo" -}}
- to:
  {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
  {{- end }}
  ports:
    - protocol: TCP
      port: {{ .port }}
{{- end -}}

{{/* Egress rule: cluster DNS (UDP and TCP 53). */}}
{{- define "banet.egressDns" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicies.dns.namespace | quote }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicies.dns.podLabels | nindent 10 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{/*
The GPU pod of one job ("inference" or "training"), as a pod template for KubernetesPodOperator.
Call with (dict "Values" .Values "job" JOB). The container is named "base": the operator reads
the logs and exit status of that container. The operator adds the run's args, labels and name.
*/}}
{{- define "banet.gpuPod" -}}
apiVersion: v1
kind: Pod
metadata:
  namespace: {{ .Values.inference.namespace }}
  labels:
    {{- include "banet.inferenceSelector" . | nindent 4 }}
    app.kubernetes.io/managed-by: airflow
    banet.io/job: {{ .job }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ .Values.inference.serviceAccount.name }}
  automountServiceAccountToken: false
  priorityClassName: {{ .Values.inference.priorityClass.name }}
  {{- if .Values.inference.imagePullSecrets }}
  imagePullSecrets:
    {{- range .Values.inference.imagePullSecrets }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  nodeSelector:
    {{- toYaml .Values.inference.nodeSelector | nindent 4 }}
  tolerations:
    {{- toYaml .Values.inference.tolerations | nindent 4 }}
  {{- if eq .job "training" }}
  activeDeadlineSeconds: {{ .Values.training.activeDeadlineSeconds }}
  {{- else }}
  activeDeadlineSeconds: {{ .Values.inference.activeDeadlineSeconds }}
  {{- end }}
  terminationGracePeriodSeconds: 60
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.podSecurity.inferenceUid }}
    runAsGroup: {{ .Values.podSecurity.inferenceUid }}
    fsGroup: {{ .Values.podSecurity.inferenceUid }}
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: base
      image: {{ include "banet.image" .Values.inference.image }}
      imagePullPolicy: {{ .Values.inference.image.pullPolicy }}
      command: ["banet-ops"]
      resources:
        requests:
          {{- toYaml .Values.inference.resources.requests | nindent 10 }}
        limits:
          {{- toYaml .Values.inference.resources.limits | nindent 10 }}
          nvidia.com/gpu: {{ .Values.inference.gpuCount | quote }}
      env:
        - name: BANET_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ .Values.secrets.database.secretName }}
              key: {{ .Values.secrets.database.key }}
        {{- if .Values.secrets.s3 }}
        - name: AWS_ACCESS_KEY_ID
          valueFrom:
            secretKeyRef:
              name: {{ .Values.secrets.s3.secretName }}
              key: {{ .Values.secrets.s3.accessKeyIdKey }}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .Values.secrets.s3.secretName }}
              key: {{ .Values.secrets.s3.secretAccessKeyKey }}
        {{- end }}
        - name: BANET_REGIONS_DIR
          value: /etc/banet/regions
        - name: BANET_HOME
          value: /tmp/banet
        - name: HOME
          value: /tmp/banet
        - name: XDG_CACHE_HOME
          value: /tmp/cache
        - name: MPLCONFIGDIR
          value: /tmp/matplotlib
        - name: PYTHONUNBUFFERED
          value: "1"
      envFrom:
        - configMapRef:
            name: {{ .Values.configMaps.settings }}
      securityContext:
        allowPrivilegeEscalation: false
        privileged: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        capabilities:
          drop: [ALL]
      volumeMounts:
        - name: scratch
          mountPath: /tmp
        - name: dshm
          mountPath: /dev/shm
        - name: regions
          mountPath: /etc/banet/regions
          readOnly: true
        {{- if and (eq .job "training") .Values.training.workPvc }}
        - name: work
          mountPath: {{ .Values.training.workPath }}
        {{- end }}
  volumes:
    - name: scratch
      emptyDir:
        sizeLimit: 20Gi
    # PyTorch shares tensors between processes through /dev/shm; the default 64 MiB is too small.
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: 8Gi
    - name: regions
      configMap:
        name: {{ .Values.configMaps.regions }}
    {{- if and (eq .job "training") .Values.training.workPvc }}
    - name: work
      persistentVolumeClaim:
        claimName: {{ .Values.training.workPvc }}
    {{- end }}
{{- end -}}
