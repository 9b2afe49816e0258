{{/*
One Marquee service: ServiceAccount, ConfigMap, Deployment (StatefulSet for search), Services, HPA and PDB.
Called as (dict "root" $ "name" "catalog").
*/}}
{{- define "marquee.component" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $ctx := dict "root" $root "name" $name -}}
{{- $svc := index $root.Values $name -}}
{{- $objName := include "marquee.name" $ctx -}}
{{- $ports := include "marquee.ports" $name | fromYaml -}}
{{- $kind := ternary "StatefulSet" "Deployment" (eq $name "search") -}}
{{- $prefix := printf "MARQUEE_%s_" (upper $name) -}}
{{- $env := dict
  "MARQUEE_LOG_LEVEL" $root.Values.log.level
  "MARQUEE_LOG_FORMAT" $root.Values.log.format
  "MARQUEE_TELEMETRY_OTLP_ENDPOINT" $root.Values.telemetry.otlpEndpoint
  "MARQUEE_DATA_DIR" "/var/lib/marquee"
  "OTEL_SERVICE_NAME" $name
  "OTEL_RESOURCE_ATTRIBUTES" (printf "service.namespace=marquee%s" (ternary (printf ",cloud.region=%s" $root.Values.region) "" (ne $root.Values.region "")))
-}}
{{- range $port, $num := $ports -}}
{{- $_ := set $env (printf "%s%s_ADDR" $prefix (upper $port)) (printf ":%v" $num) -}}
{{- end -}}
{{- $redis := include "marquee.redisAddr" $root -}}
{{- $issuer := index $root.Values.auth.config "issuer" -}}
{{- $audience := index $root.Values.auth.config "audience" -}}
{{- if eq $name "catalog" -}}
{{- $_ := set $env "MARQUEE_CATALOG_AUTH_ADDR" (include "marquee.grpcTarget" (dict "root" $root "name" "auth")) -}}
{{- $_ := set $env "MARQUEE_CATALOG_AUTH_ISSUER" $issuer -}}
{{- $_ := set $env "MARQUEE_CATALOG_AUTH_AUDIENCE" $audience -}}
{{- $_ := set $env "MARQUEE_CATALOG_REDIS_ADDR" (ternary $redis "" $svc.useRedis) -}}
{{- else if eq $name "search" -}}
{{- $_ := set $env "MARQUEE_SEARCH_INDEX_DIR" "/var/lib/marquee/search" -}}
{{- $_ := set $env "MARQUEE_SEARCH_CATALOG_ADDR" (include "marquee.grpcTarget" (dict "root" $root "name" "catalog")) -}}
{{- $_ := set $env "MARQUEE_SEARCH_AUTH_ADDR" (include "marquee.grpcTarget" (dict "root" $root "name" "auth")) -}}
{{- else if eq $name "gateway" -}}
{{- $_ := set $env "MARQUEE_GATEWAY_CATALOG_ADDR" (include "marquee.grpcTarget" (dict "root" $root "name" "catalog")) -}}
{{- $_ := set $env "MARQUEE_GATEWAY_SEARCH_ADDR" (include "marquee.grpcTarget" (dict "root" $root "name" "search")) -}}
{{- $_ := set $env "MARQUEE_GATEWAY_AUTH_ADDR" (include "marquee.grpcTarget" (dict "root" $root "name" "auth")) -}}
{{- $_ := set $env "MARQUEE_GATEWAY_REDIS_ADDR" $redis -}}
{{- $_ := set $env "MARQUEE_GATEWAY_AUTH_ISSUER" $issuer -}}
{{- $_ := set $env "MARQUEE_GATEWAY_AUTH_AUDIENCE" $audience -}}
{{- end -}}
{{- range $key, $value := $svc.config -}}
{{- $_ := set $env (printf "%s%s" $prefix (upper $key | replace "." "_")) (include "marquee.envValue" $value) -}}
{{- end -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $objName }}
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $objName }}-config
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
data:
  {{- range $key, $value := $env }}
  {{ $key }}: {{ $value | toString | quote }}
  {{- end }}
---
apiVersion: apps/v1
kind: {{ $kind }}
metadata:
  name: {{ $objName }}
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "marquee.selectorLabels" $ctx | nindent 6 }}
  {{- if eq $kind "StatefulSet" }}
  serviceName: {{ $objName }}-headless
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  persistentVolumeClaimRetentionPolicy:
    whenScaled: {{ $svc.persistence.whenScaled }}
    whenDeleted: {{ $svc.persistence.whenDeleted }}
  volumeClaimTemplates:
    - apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: index
        labels:
          {{- include "marquee.selectorLabels" $ctx | nindent 10 }}
      spec:
        accessModes:
          - ReadWriteOnce
        {{- with $svc.persistence.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $svc.persistence.size }}
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "marquee.labels" $ctx | nindent 8 }}
      annotations:
        checksum/config: {{ toJson $env | sha256sum }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $objName }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      securityContext:
        {{- include "marquee.podSecurityContext" dict | nindent 8 }}
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds }}
      {{- include "marquee.scheduling" (dict "root" $root "name" $name "svc" $svc) | trim | nindent 6 }}
      containers:
        - name: {{ $name }}
          image: {{ include "marquee.image" $ctx }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          ports:
            {{- range $port, $num := $ports }}
            - name: {{ $port }}
              containerPort: {{ $num }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ $objName }}-config
          env:
            {{- include "marquee.secretEnv" $ctx | nindent 12 }}
          startupProbe:
            {{- if eq $name "gateway" }}
            httpGet:
              path: /healthz
              port: http
            {{- else }}
            grpc:
              port: {{ $ports.grpc }}
            {{- end }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: {{ ternary 180 60 (eq $name "search") }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: admin
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: {{ ternary "http" "admin" (eq $name "gateway") }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          lifecycle:
            preStop:
              sleep:
                seconds: 5
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- include "marquee.containerSecurityContext" dict | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/marquee
            - name: tmp
              mountPath: /tmp
            {{- if eq $kind "StatefulSet" }}
            - name: index
              mountPath: /var/lib/marquee/search
            {{- end }}
      volumes:
        - name: data
          emptyDir:
            sizeLimit: 1Gi
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $objName }}
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
    marquee.dev/scrape: "true"
spec:
  type: ClusterIP
  selector:
    {{- include "marquee.selectorLabels" $ctx | nindent 4 }}
  ports:
    {{- range $port, $num := $ports }}
    - name: {{ $port }}
      port: {{ $num }}
      targetPort: {{ $port }}
      protocol: TCP
      appProtocol: {{ ternary "kubernetes.io/h2c" "http" (eq $port "grpc") }}
    {{- end }}
{{- if hasKey $ports "grpc" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $objName }}-headless
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: false
  selector:
    {{- include "marquee.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
{{- end }}
{{- if $svc.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $objName }}
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: {{ $kind }}
    name: {{ $objName }}
  minReplicas: {{ $svc.autoscaling.minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Percent
          value: 100
          periodSeconds: 60
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
        - type: Pods
          value: 1
          periodSeconds: 120
{{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $objName }}
  labels:
    {{- include "marquee.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $svc.pdb.maxUnavailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "marquee.selectorLabels" $ctx | nindent 6 }}
{{- end -}}
