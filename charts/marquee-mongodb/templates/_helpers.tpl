{{/* Labels of the chart's objects. */}}
{{- define "mongodb.labels" -}}
app.kubernetes.io/name: marquee-mongodb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: mongodb
app.kubernetes.io/part-of: marquee
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.region }}
marquee.dev/region: {{ . }}
{{- end }}
{{- end -}}

{{/* Whether members are addressed across regions. */}}
{{- define "mongodb.crossSite" -}}
{{- if or (eq .Values.role "replica") .Values.remoteSites -}}true{{- end -}}
{{- end -}}

{{/*
One replica set (a shard, or the config servers) at this site: (dict "root" $ "rs" "rs0" "size" 3 "podPrefix"
"marquee-mongodb-rs0" "remoteSize" "membersPerShard" "resources" {...} "storage" "200Gi").
*/}}
{{- define "mongodb.replset" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
size: {{ .size }}
affinity:
  antiAffinityTopologyKey: {{ $v.antiAffinityTopologyKey }}
{{- if $v.zones }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels:
        app.kubernetes.io/instance: {{ $v.clusterName }}
        app.kubernetes.io/replset: {{ .rs }}
{{- end }}
podDisruptionBudget:
  maxUnavailable: 1
{{- if include "mongodb.crossSite" $root }}
expose:
  enabled: true
  type: {{ $v.expose.type }}
  {{- with $v.expose.serviceAnnotations }}
  serviceAnnotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.expose.loadBalancerSourceRanges }}
  loadBalancerSourceRanges:
    {{- toYaml . | nindent 4 }}
  {{- end }}
replsetOverrides:
  {{- range $i := until (int .size) }}
  {{ printf "%s-%d" $.podPrefix $i }}:
    host: {{ printf "%s-%d.%s:27017" $.podPrefix $i $v.site.domain }}
  {{- end }}
{{- else }}
expose:
  enabled: false
{{- end }}
{{- if and (eq $v.role "primary") $v.remoteSites }}
externalNodes:
  {{- range $site := $v.remoteSites }}
  {{- range $i := until (int (index $site $.remoteSize)) }}
  - host: {{ printf "%s-%d.%s" $.podPrefix $i $site.domain }}
    port: 27017
    votes: 0
    priority: 0
  {{- end }}
  {{- end }}
{{- end }}
resources:
  {{- toYaml .resources | nindent 2 }}
volumeSpec:
  persistentVolumeClaim:
    {{- with $v.storage.storageClassName }}
    storageClassName: {{ . }}
    {{- end }}
    resources:
      requests:
        storage: {{ .storage }}
{{- end -}}
