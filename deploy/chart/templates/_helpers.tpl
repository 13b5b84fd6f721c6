{{/* Labels of every object of the release. */}}
{{- define "dapr-wasi.labels" -}}
app.kubernetes.io/part-of: dapr-wasi
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/*
A generated secret value that survives upgrades: the value already in
Secret `name` under `key`, else 32 random characters.
Call: include "dapr-wasi.generated" (dict "ctx" $ "name" "redis" "key" "password")
*/}}
{{- define "dapr-wasi.generated" -}}
{{- $s := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $s $s.data (index $s.data .key) -}}
{{- index $s.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end }}

{{/* The Redis address, host:port. */}}
{{- define "dapr-wasi.redisHost" -}}
{{- if .Values.redis.deploy -}}redis.{{ .Release.Namespace }}.svc:6379{{- else -}}{{ required "redis.host is required when redis.deploy is false" .Values.redis.host }}{{- end -}}
{{- end }}

{{/* The Secret holding Redis's password (key `password`). */}}
{{- define "dapr-wasi.redisSecret" -}}
{{- if .Values.redis.deploy -}}redis{{- else -}}{{ required "redis.existingSecret is required when redis.deploy is false" .Values.redis.existingSecret }}{{- end -}}
{{- end }}


{{/* A restricted container security context: what every container here runs with. */}}
{{- define "dapr-wasi.containerSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{/*
The services and their wiring (ports, who may invoke whom, secrets, Dapr
APIs, component and topic scopes), derived from each service's service.toml
by `stack gen`. Call: include "dapr-wasi.wiring" . | fromYaml
*/}}
{{- define "dapr-wasi.wiring" -}}
{{ .Files.Get "files/services.yaml" }}
{{- end }}

{{/*
A service's sizing: values.yaml's services.<app> over serviceDefaults; the
memory limit defaults to its host's worst case (`wasm-host limits`) plus
the host itself.
Call: include "dapr-wasi.sizing" (dict "ctx" $ "app" $app "wire" $wire) | fromYaml
*/}}
{{- define "dapr-wasi.sizing" -}}
{{- $own := index .ctx.Values.services .app | default dict -}}
{{- $svc := mergeOverwrite (deepCopy .ctx.Values.serviceDefaults) (deepCopy $own) -}}
{{- if not $svc.resources.limits.memory -}}
{{- $_ := set $svc.resources.limits "memory" (printf "%dMi" (add .wire.worstCaseMi .ctx.Values.hostOverheadMi)) -}}
{{- end -}}
{{ toYaml $svc }}
{{- end }}
