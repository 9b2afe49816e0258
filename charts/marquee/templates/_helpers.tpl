{{/*
Shared templates of the Marquee chart. Every component (catalog, search, auth, gateway, redis, migrate) is
rendered from the same few definitions so that security settings, labels and probes cannot drift apart.
*/}}

{{/* Prefix of every object name. */}}
{{- define "marquee.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "marquee" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-marquee" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's objects: (dict "root" $ "name" "catalog"). */}}
{{- define "marquee.name" -}}
{{- printf "%s-%s" (include "marquee.fullname" .root) .name -}}
{{- end -}}

{{/* Labels selecting a component's pods: (dict "root" $ "name" "catalog"). */}}
{{- define "marquee.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Labels of every object of a component: (dict "root" $ "name" "catalog"). */}}
{{- define "marquee.labels" -}}
{{ include "marquee.selectorLabels" . }}
app.kubernetes.io/component: {{ .name }}
app.kubernetes.io/part-of: marquee
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Labels every pod of the release carries (the network policies select on them). */}}
{{- define "marquee.releaseSelector" -}}
app.kubernetes.io/part-of: marquee
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Image of a Marquee service: (dict "root" $ "name" "catalog"). */}}
{{- define "marquee.image" -}}
{{- $svc := index .root.Values .name -}}
{{- $repo := printf "%s/%s" (trimSuffix "/" .root.Values.image.repository) .name -}}
{{- if $svc.image.digest -}}
{{- printf "%s@%s" $repo $svc.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* A configuration value as an environment variable string (integers never in exponent form, lists joined by commas). */}}
{{- define "marquee.envValue" -}}
{{- if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if kindIs "float64" . -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* Address of Redis, or nothing. */}}
{{- define "marquee.redisAddr" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s:6379" (include "marquee.name" (dict "root" . "name" "redis")) -}}
{{- else -}}
{{- .Values.redis.externalAddress -}}
{{- end -}}
{{- end -}}

{{/* In-cluster gRPC target of a service through its headless Service (client-side balancing): (dict "root" $ "name" "catalog"). */}}
{{- define "marquee.grpcTarget" -}}
{{- $ports := dict "catalog" 9091 "search" 9092 "auth" 9093 -}}
{{- printf "dns:///%s-headless:%v" (include "marquee.name" .) (index $ports .name) -}}
{{- end -}}

{{/* Pod security context shared by every pod (the images run as 65532:65532). */}}
{{- define "marquee.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
fsGroup: {{ .uid | default 65532 }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context shared by every container. */}}
{{- define "marquee.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling constraints: (dict "root" $ "name" "catalog" "svc" $values). */}}
{{- define "marquee.scheduling" -}}
{{- $root := .root -}}
{{- with .svc.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .svc.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.topology.zones }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: topology.kubernetes.io/zone
              operator: In
              values:
                {{- toYaml . | nindent 16 }}
{{- end }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ $root.Values.topology.zoneSpreadPolicy }}
    labelSelector:
      matchLabels:
        {{- include "marquee.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "marquee.selectorLabels" . | nindent 8 }}
{{- end -}}

{{/* Environment of a service container taken from Secrets and the downward API: (dict "root" $ "name" "catalog"). */}}
{{- define "marquee.secretEnv" -}}
{{- $s := .root.Values.secrets -}}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
      divisor: "1"
{{- if eq .name "catalog" }}
- name: MARQUEE_CATALOG_MONGO_URI
  valueFrom:
    secretKeyRef:
      name: {{ $s.mongodb.name }}
      key: {{ $s.mongodb.catalogKey }}
- name: MARQUEE_CATALOG_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $s.clients.name }}
      key: {{ $s.clients.catalogKey }}
- name: MARQUEE_CATALOG_PAGE_TOKEN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s.catalog.name }}
      key: {{ $s.catalog.pageTokenKeyKey }}
{{- else if eq .name "auth" }}
- name: MARQUEE_AUTH_MONGO_URI
  valueFrom:
    secretKeyRef:
      name: {{ $s.mongodb.name }}
      key: {{ $s.mongodb.authKey }}
- name: MARQUEE_AUTH_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s.auth.name }}
      key: {{ $s.auth.keyEncryptionKeyKey }}
- name: MARQUEE_AUTH_SERVICE_CLIENTS
  valueFrom:
    secretKeyRef:
      name: {{ $s.auth.name }}
      key: {{ $s.auth.serviceClientsKey }}
- name: MARQUEE_AUTH_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $s.auth.name }}
      key: {{ $s.auth.adminPasswordKey }}
      optional: true
{{- else if eq .name "search" }}
- name: MARQUEE_SEARCH_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $s.clients.name }}
      key: {{ $s.clients.searchKey }}
{{- else if eq .name "gateway" }}
- name: MARQUEE_GATEWAY_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $s.clients.name }}
      key: {{ $s.clients.gatewayKey }}
{{- if and $s.redis.name (not .root.Values.redis.enabled) }}
- name: MARQUEE_GATEWAY_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $s.redis.name }}
      key: {{ $s.redis.passwordKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Ports of a service: name -> number. */}}
{{- define "marquee.ports" -}}
{{- $all := dict
  "catalog" (dict "grpc" 9091 "admin" 9191)
  "search" (dict "grpc" 9092 "admin" 9192)
  "auth" (dict "grpc" 9093 "admin" 9193)
  "gateway" (dict "http" 8080 "admin" 9190) -}}
{{- toYaml (index $all .) -}}
{{- end -}}
