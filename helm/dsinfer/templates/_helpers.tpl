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
{{- range $key := list "model_path" "grpc_listen" "http_listen" "openai_listen" "tls" "parallel" -}}
{{- if hasKey $cfg $key -}}
{{- fail (printf "config.%s is set by the chart; use the chart's values (model, ports, tls, parallel) instead" $key) -}}
{{- end -}}
{{- end -}}
{{- $par := include "dsinfer.parallel" . | fromYaml -}}
{{- if $par.section -}}
{{- $_ := set $cfg "parallel" (dict "tp" $par.tp "ep" $par.ep "ranks_per_node" $par.ranksPerNode "rendezvous_listen" $par.rendezvousListen "timeout_seconds" $par.timeoutSeconds) -}}
{{- end -}}
{{- $_ := set $cfg "model_path" .Values.model.mountPath -}}
{{- $_ := set $cfg "grpc_listen" (printf "0.0.0.0:%d" (int .Values.ports.grpc)) -}}
{{- $_ := set $cfg "http_listen" (printf "0.0.0.0:%d" (int .Values.ports.metrics)) -}}
{{- if .Values.openai.enabled -}}
{{- if has (int .Values.openai.port) (list (int .Values.ports.grpc) (int .Values.ports.metrics)) -}}
{{- fail (printf "openai.port (%d) collides with ports.grpc or ports.metrics: the OpenAI API has its own listener" (int .Values.openai.port)) -}}
{{- end -}}
{{- $_ := set $cfg "openai_listen" (printf "0.0.0.0:%d" (int .Values.openai.port)) -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- if not .Values.tls.secretName -}}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" -}}
{{- end -}}
{{- $tls := dict "enabled" true "cert_file" (printf "%s/tls.crt" (include "dsinfer.tlsDir" .)) "key_file" (printf "%s/tls.key" (include "dsinfer.tlsDir" .)) "require_client_cert" .Values.tls.requireClientCert -}}
{{- if .Values.tls.metricsListener -}}
{{- $_ := set $tls "on_http_listen" true -}}
{{- end -}}
{{- if .Values.tls.clientCaSecretName -}}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" (include "dsinfer.clientCaDir" .)) -}}
{{- else if .Values.tls.requireClientCert -}}
{{- fail "tls.requireClientCert needs tls.clientCaSecretName (a Secret with ca.crt)" -}}
{{- end -}}
{{- $_ := set $cfg "tls" $tls -}}
{{- else -}}
{{- if .Values.tls.metricsListener -}}
{{- fail "tls.metricsListener needs tls.enabled (the metrics port uses the gRPC certificate)" -}}
{{- end -}}
{{- $_ := set $cfg "tls" (dict "enabled" false) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}


{{/*
The parallel layout, validated: .Values.parallel resolved against multiNode and gpu. Returns YAML
(use with fromYaml): tp, ep, ranksPerNode (ranks per pod), nodes (pods per group),
rendezvousPort, rendezvousListen, timeoutSeconds, section (whether server.yaml gets `parallel`:
not for the single-rank default, whose config stays as before).
JSON schema cannot express divisibility between values; these `fail`s do.
*/}}
{{- define "dsinfer.parallel" -}}
{{- $p := .Values.parallel -}}
{{- $tp := int $p.tp -}}
{{- $ep := int $p.ep -}}
{{- $rpn := int $p.ranksPerNode -}}
{{- $port := int $p.rendezvousPort -}}
{{- $multi := .Values.multiNode.enabled -}}
{{- if or (lt $tp 1) (lt $ep 1) (lt $rpn 0) -}}
{{- fail (printf "parallel: tp (%d) and ep (%d) must be >= 1, ranksPerNode (%d) >= 0" $tp $ep $rpn) -}}
{{- end -}}
{{- if mod $tp $ep -}}
{{- fail (printf "parallel.ep (%d) must divide parallel.tp (%d): every expert-parallel group has the same number of ranks" $ep $tp) -}}
{{- end -}}
{{- if $multi -}}
{{- if eq $rpn 0 -}}
{{- $rpn = int .Values.gpu.count -}}
{{- end -}}
{{- else if and $rpn (ne $rpn $tp) -}}
{{- fail (printf "parallel.ranksPerNode (%d) must be 0 or equal parallel.tp (%d) on a single node (all ranks in one pod); set multiNode.enabled to spread the ranks over several pods" $rpn $tp) -}}
{{- else -}}
{{- $rpn = $tp -}}
{{- end -}}
{{- if mod $tp $rpn -}}
{{- fail (printf "parallel.tp (%d) must be a multiple of parallel.ranksPerNode (%d): every pod runs the same number of ranks" $tp $rpn) -}}
{{- end -}}
{{- $nodes := div $tp $rpn -}}
{{- if and $multi (lt $nodes 2) -}}
{{- fail (printf "multiNode.enabled needs parallel.tp (%d) > parallel.ranksPerNode (%d), i.e. at least 2 pods; one pod is the single-node Deployment (multiNode.enabled: false)" $tp $rpn) -}}
{{- end -}}
{{- $cuda := eq (toString (default "cpu" .Values.config.backend)) "cuda" -}}
{{- if and $cuda (or $multi (gt $tp 1)) (ne (int .Values.gpu.count) $rpn) -}}
{{- fail (printf "gpu.count (%d) must equal the ranks per pod (%d): with backend cuda every rank owns one GPU" (int .Values.gpu.count) $rpn) -}}
{{- end -}}
{{- $taken := list (int .Values.ports.grpc) (int .Values.ports.metrics) -}}
{{- if .Values.openai.enabled -}}
{{- $taken = append $taken (int .Values.openai.port) -}}
{{- end -}}
{{- if has $port $taken -}}
{{- fail (printf "parallel.rendezvousPort (%d) collides with ports.grpc, ports.metrics or openai.port" $port) -}}
{{- end -}}
{{- /* One pod: only the leader's own local ranks connect, so the port stays on loopback. */ -}}
{{- $listen := printf "127.0.0.1:%d" $port -}}
{{- if $multi -}}
{{- $listen = printf "0.0.0.0:%d" $port -}}
{{- end -}}
tp: {{ $tp }}
ep: {{ $ep }}
ranksPerNode: {{ $rpn }}
nodes: {{ $nodes }}
rendezvousPort: {{ $port }}
rendezvousListen: {{ $listen | quote }}
timeoutSeconds: {{ $p.timeoutSeconds }}
section: {{ or $multi (gt $tp 1) }}
{{- end -}}

{{/* The metrics port's scheme: HTTPS when tls.metricsListener puts it behind TLS. */}}
{{- define "dsinfer.metricsScheme" -}}
{{- if and .Values.tls.enabled .Values.tls.metricsListener -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* Services and the ServiceMonitor reach the serving pod: with a LeaderWorkerSet, the leaders only. */}}
{{- define "dsinfer.serviceSelector" -}}
{{ include "dsinfer.selectorLabels" . }}
{{- if .Values.multiNode.enabled }}
leaderworkerset.sigs.k8s.io/worker-index: "0"
{{- end -}}
{{- end -}}
