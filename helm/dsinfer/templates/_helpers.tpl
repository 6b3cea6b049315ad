{{/* Names and labels shared by the templates. */}}

{{- define "dsinfer.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* release-chart, or just the release name when it already contains the chart name. */}}
{{- define "dsinfer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dsinfer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dsinfer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dsinfer.labels" -}}
{{ include "dsinfer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "dsinfer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dsinfer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the pod finds its TLS material; the server config points at these files. */}}
{{- define "dsinfer.tlsDir" -}}/etc/dsinfer/tls{{- end -}}
{{- define "dsinfer.clientCaDir" -}}/etc/dsinfer/client-ca{{- end -}}

{{/*
The server config: .Values.config plus what the chart owns (model path, listeners, TLS files).
Rendered once here so the ConfigMap and the pod's checksum annotation agree.
*/}}
{{- define "dsinfer.serverConfig" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- range $key := list "model_path" "grpc_listen" "http_listen" "tls" -}}
{{- if hasKey $cfg $key -}}
{{- fail (printf "config.%s is set by the chart; use the chart's values (model, ports, tls) instead" $key) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "model_path" .Values.model.mountPath -}}
{{- $_ := set $cfg "grpc_listen" (printf "0.0.0.0:%d" (int .Values.ports.grpc)) -}}
{{- $_ := set $cfg "http_listen" (printf "0.0.0.0:%d" (int .Values.ports.metrics)) -}}
{{- if .Values.tls.enabled -}}
{{- if not .Values.tls.secretName -}}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" -}}
{{- end -}}
{{- $tls := dict "enabled" true "cert_file" (printf "%s/tls.crt" (include "dsinfer.tlsDir" .)) "key_file" (printf "%s/tls.key" (include "dsinfer.tlsDir" .)) "require_client_cert" .Values.tls.requireClientCert -}}
{{- if .Values.tls.clientCaSecretName -}}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" (include "dsinfer.clientCaDir" .)) -}}
{{- else if .Values.tls.requireClientCert -}}
{{- fail "tls.requireClientCert needs tls.clientCaSecretName (a Secret with ca.crt)" -}}
{{- end -}}
{{- $_ := set $cfg "tls" $tls -}}
{{- else -}}
{{- $_ := set $cfg "tls" (dict "enabled" false) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
