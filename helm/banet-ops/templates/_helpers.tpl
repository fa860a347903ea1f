{{/* Common labels of every object this chart renders. */}}
{{- define "banet.labels" -}}
app.kubernetes.io/name: banet-ops
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of the inference pods (KubernetesPodOperator sets the same: banet_ops/orchestration/k8s.py). */}}
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
