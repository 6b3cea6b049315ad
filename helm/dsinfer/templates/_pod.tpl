{{/*
The dsinfer pod template (metadata + spec), shared by the Deployment and the LeaderWorkerSet.
Call with (dict "root" . "role" ROLE), ROLE one of
  single  the one pod of the Deployment: `dsinfer serve`, all ranks local;
  leader  LeaderWorkerSet pod 0: `dsinfer serve` (rank 0 and its local ranks), gRPC, metrics,
          the OpenAI API (openai.enabled), probes and the rendezvous port;
  worker  LeaderWorkerSet pods 1..size-1: `dsinfer worker --node-rank N --leader HOST:PORT`, no
          service ports, no HTTP probes (a dead worker restarts its container, and LWS's
          RecreateGroupOnPodRestart then recreates the whole group).
*/}}
{{- define "dsinfer.podTemplate" -}}
{{- $root := .root -}}
{{- $role := .role -}}
{{- $v := $root.Values -}}
{{- $model := $v.model -}}
{{- $drain := 30.0 -}}
{{- if hasKey $v.config "drain_grace_seconds" -}}
{{- $drain = $v.config.drain_grace_seconds -}}
{{- end -}}
{{- if and $model.existingClaim $model.hostPath -}}
{{- fail "model: set only one of existingClaim and hostPath" -}}
{{- end -}}
{{- if not (or $model.existingClaim $model.hostPath) -}}
{{- fail "model: set existingClaim (a PVC holding the model) or hostPath (a node directory)" -}}
{{- end -}}
{{- $par := include "dsinfer.parallel" $root | fromYaml -}}
{{- $serving := ne $role "worker" -}}
{{- /* TLS material only where gRPC (and the OpenAI API) is served; workers never open it. */ -}}
{{- $tls := and $serving $v.tls.enabled -}}
metadata:
  labels:
    {{- include "dsinfer.labels" $root | nindent 4 }}
    {{- if ne $role "single" }}
    app.kubernetes.io/component: {{ $role }}
    {{- end }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pod when the server config changes.
    checksum/config: {{ include "dsinfer.serverConfig" $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "dsinfer.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  # The server drains for config.drain_grace_seconds after SIGTERM (/readyz turns 503 first).
  terminationGracePeriodSeconds: {{ add (int (ceil $drain)) (int $v.terminationGraceExtraSeconds) }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: dsinfer
      image: "{{ $v.image.repository }}:{{ $v.image.tag | default $root.Chart.AppVersion }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command:
        {{- toYaml $v.command | nindent 8 }}
      args:
        {{- if $serving }}
        {{- toYaml $v.args | nindent 8 }}
        {{- else }}
        # Ranks node-rank*ranksPerNode ... +ranksPerNode-1; LWS sets both variables in the pod.
        - worker
        - --config
        - /etc/dsinfer/server.yaml
        - --node-rank
        - $(LWS_WORKER_INDEX)
        - --leader
        - "$(LWS_LEADER_ADDRESS):{{ $par.rendezvousPort }}"
        {{- end }}
      {{- if eq $role "single" }}
      {{- with $v.extraEnv }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- else }}
      env:
        # This pod's address for the collective transport (Gloo/NCCL bootstrap).
        - name: DSINFER_BIND_ADDRESS
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- if $serving }}
      ports:
        - name: grpc
          containerPort: {{ $v.ports.grpc }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $v.ports.metrics }}
          protocol: TCP
        {{- if $v.openai.enabled }}
        - name: openai
          containerPort: {{ $v.openai.port }}
          protocol: TCP
        {{- end }}
        {{- if eq $role "leader" }}
        - name: rendezvous
          containerPort: {{ $par.rendezvousPort }}
          protocol: TCP
        {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: metrics
          scheme: {{ include "dsinfer.metricsScheme" $root }}
        {{- toYaml $v.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
          scheme: {{ include "dsinfer.metricsScheme" $root }}
        {{- toYaml $v.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: metrics
          scheme: {{ include "dsinfer.metricsScheme" $root }}
        {{- toYaml $v.probes.readiness | nindent 8 }}
      {{- end }}
      resources:
        requests:
          {{- with $v.resources.requests }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          {{ $v.gpu.resource }}: {{ $v.gpu.count }}
        limits:
          {{- with $v.resources.limits }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          {{ $v.gpu.resource }}: {{ $v.gpu.count }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/dsinfer/server.yaml
          subPath: server.yaml
          readOnly: true
        - name: model
          mountPath: {{ $model.mountPath }}
          {{- with $model.subPath }}
          subPath: {{ . }}
          {{- end }}
          readOnly: true
        {{- if $tls }}
        - name: tls
          mountPath: {{ include "dsinfer.tlsDir" $root }}
          readOnly: true
        {{- if $v.tls.clientCaSecretName }}
        - name: client-ca
          mountPath: {{ include "dsinfer.clientCaDir" $root }}
          readOnly: true
        {{- end }}
        {{- end }}
        - name: tmp
          mountPath: /tmp
        - name: shm
          mountPath: /dev/shm
  volumes:
    - name: config
      configMap:
        name: {{ include "dsinfer.fullname" $root }}-config
    - name: model
      {{- if $model.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $model.existingClaim }}
        readOnly: true
      {{- else }}
      hostPath:
        path: {{ $model.hostPath }}
        type: Directory
      {{- end }}
    {{- if $tls }}
    - name: tls
      secret:
        secretName: {{ $v.tls.secretName }}
        defaultMode: 0440
    {{- if $v.tls.clientCaSecretName }}
    - name: client-ca
      secret:
        secretName: {{ $v.tls.clientCaSecretName }}
        items:
          - key: ca.crt
            path: ca.crt
        defaultMode: 0444
    {{- end }}
    {{- end }}
    # Read-only root filesystem: scratch space and shared memory are explicit.
    - name: tmp
      emptyDir:
        sizeLimit: 1Gi
    - name: shm
      emptyDir:
        medium: Memory
        sizeLimit: {{ $v.shmSizeLimit }}
{{- end -}}
