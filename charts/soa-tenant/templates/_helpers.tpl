{{/*
The one place that knows this chart's names, labels, security defaults and shared env.
Object names are fixed ("soa-<component>"): the operator always renders with release name `soa`
and finds objects by these names, so they must not depend on the release name.
*/}}

{{/*
The tenant namespace, derived from tenant.name and written on every namespaced object, so the
objects land beside their Namespace whatever release namespace a caller renders with (the
operator uses soa-<name>; a bare `helm template` uses "default").
*/}}
{{- define "soa.namespace" -}}
soa-{{ .Values.tenant.name }}
{{- end -}}

{{/* "soa-<component>": the name of a component's workload, Service and ServiceAccount. */}}
{{- define "soa.name" -}}
soa-{{ . }}
{{- end -}}

{{/*
Component table: component -> app.kubernetes.io/name. "tenant" covers the namespace-level guard
rails (Namespace, quota, limits, network policies), "platform" the shared config and identity.
*/}}
{{- define "soa.appNames" -}}
tenant: soa
platform: soa
ingress: soa
api: soa
worker: soa
beat: soa
migrate: soa
test: soa
postgres: postgresql
redis: redis
minio: minio
janus: janus
coturn: coturn
{{- end -}}

{{/* Selector labels: stable for the life of an object (Deployment selectors are immutable). */}}
{{- define "soa.selectorLabels" -}}
{{- $appName := get (include "soa.appNames" . | fromYaml) .component -}}
{{- if not $appName -}}{{- fail (printf "soa-tenant: unknown component %q in soa.selectorLabels" .component) -}}{{- end -}}
app.kubernetes.io/name: {{ $appName }}
app.kubernetes.io/instance: {{ .root.Values.tenant.name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Labels on every object. managed-by is written out: .Release.Service would say "Helm", but the
operator applies these objects and prunes by this label.
Usage: include "soa.labels" (dict "root" $ "component" "api")
*/}}
{{- define "soa.labels" -}}
app.kubernetes.io/managed-by: soa-operator
app.kubernetes.io/part-of: soa
soa.moitt.gov.pk/tenant: {{ .root.Values.tenant.name }}
{{ include "soa.selectorLabels" . }}
{{- end -}}

{{/*
Labels for PersistentVolumeClaims made by StatefulSet controllers. No managed-by: the operator
does not apply these claims, and a label-based prune must never see them as stale objects.
*/}}
{{- define "soa.claimLabels" -}}
app.kubernetes.io/part-of: soa
soa.moitt.gov.pk/tenant: {{ .root.Values.tenant.name }}
{{ include "soa.selectorLabels" . }}
{{- end -}}

{{/* Standard metadata of a namespaced object: name, namespace, labels. */}}
{{- define "soa.metadata" -}}
name: {{ .name }}
namespace: {{ include "soa.namespace" .root }}
labels:
  {{- include "soa.labels" . | nindent 2 }}
{{- end -}}

{{/*
Image tag of a platform release. OCI tags cannot hold "+", so semver build metadata uses "_"
(the convention Helm itself uses for chart versions in OCI registries).
*/}}
{{- define "soa.platformImage" -}}
{{ .root.Values.image.repository }}:{{ .version | replace "+" "_" }}
{{- end -}}

{{/* The object-store bucket holding the tenant's files; also the ingress path to MinIO. */}}
{{- define "soa.bucket" -}}soa-files{{- end -}}

{{/* Name of the migration Job for migration.version: dots and "+" become dashes. */}}
{{- define "soa.migrationJobName" -}}
soa-migrate-{{ .Values.migration.version | replace "." "-" | replace "+" "-" }}
{{- end -}}

{{/* Replicas of a workload: 0 while the tenant is suspended. */}}
{{- define "soa.replicas" -}}
{{- if .root.Values.suspended -}}0{{- else -}}{{ .replicas }}{{- end -}}
{{- end -}}

{{/*
UID/GID every container runs as: non-root, above 10000 so it never collides with a host user.
The postgres and redis images accept an arbitrary UID (postgres via nss_wrapper in /tmp).
*/}}
{{- define "soa.uid" -}}10001{{- end -}}

{{- define "soa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ include "soa.uid" . }}
runAsGroup: {{ include "soa.uid" . }}
fsGroup: {{ include "soa.uid" . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "soa.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ include "soa.uid" . }}
runAsGroup: {{ include "soa.uid" . }}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod-level settings shared by every pod: identity, no API token, secure context. */}}
{{- define "soa.podDefaults" -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "soa.podSecurityContext" .root | nindent 2 }}
{{- end -}}

{{/* A small writable /tmp (the root filesystem is read-only). */}}
{{- define "soa.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{- define "soa.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{/*
Environment of every platform process (api, worker, beat, migrate): the ConfigMap plus the
generated Secrets by reference. One settings class reads it, so every process gets the same set.
*/}}
{{- define "soa.platformEnv" -}}
{{- $v := .root.Values -}}
- name: OTEL_SERVICE_NAME
  value: {{ include "soa.name" .process }}
# the process has no passwd entry; caches and the like go to the writable /tmp
- name: HOME
  value: /tmp
{{ include "soa.secretEnv" (dict "env" "SOA_DATABASE_USER" "secret" $v.secrets.database "key" "username") }}
{{ include "soa.secretEnv" (dict "env" "SOA_DATABASE_PASSWORD" "secret" $v.secrets.database "key" "password") }}
{{ include "soa.secretEnv" (dict "env" "SOA_SIGNING_KEY" "secret" $v.secrets.app "key" "signing-key") }}
{{ include "soa.secretEnv" (dict "env" "SOA_SESSION_KEY" "secret" $v.secrets.app "key" "session-key") }}
{{- if $v.components.storage.enabled }}
{{ include "soa.secretEnv" (dict "env" "SOA_S3_ACCESS_KEY" "secret" $v.secrets.objectStore "key" "access-key") }}
{{ include "soa.secretEnv" (dict "env" "SOA_S3_SECRET_KEY" "secret" $v.secrets.objectStore "key" "secret-key") }}
{{- end }}
{{- if $v.components.meetings.enabled }}
{{ include "soa.secretEnv" (dict "env" "SOA_JANUS_API_SECRET" "secret" $v.secrets.meetings "key" "janus-api-secret") }}
{{ include "soa.secretEnv" (dict "env" "SOA_JANUS_ADMIN_SECRET" "secret" $v.secrets.meetings "key" "janus-admin-secret") }}
{{ include "soa.secretEnv" (dict "env" "SOA_TURN_SHARED_SECRET" "secret" $v.secrets.meetings "key" "turn-shared-secret") }}
{{- end }}
{{- with $v.identity.oidc.clientSecretRef }}
{{ include "soa.secretEnv" (dict "env" "SOA_OIDC_CLIENT_SECRET" "secret" .name "key" .key) }}
{{- end }}
{{- end -}}

{{/*
The parts of a platform container every process shares: same image, settings and hardening.
Usage: include "soa.platformContainer" (dict "root" $ "process" "api" "version" $version)
Optional: "resources" (key under .Values.resources, default the process), "extraEnv" (YAML list).
*/}}
{{- define "soa.platformContainer" -}}
{{- $v := .root.Values -}}
name: {{ .process }}
image: {{ include "soa.platformImage" (dict "root" .root "version" .version) }}
imagePullPolicy: {{ $v.image.pullPolicy }}
command: ["soa", {{ .process | quote }}]
envFrom:
  - configMapRef:
      name: soa-platform
env:
  {{- include "soa.platformEnv" (dict "root" .root "process" .process) | nindent 2 }}
  {{- with .extraEnv }}
  {{- . | nindent 2 }}
  {{- end }}
securityContext:
  {{- include "soa.containerSecurityContext" .root | nindent 2 }}
resources:
  {{- toYaml (get $v.resources (default .process .resources)) | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{/* Pod template annotations that roll platform pods when their settings change. */}}
{{- define "soa.platformPodAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/*
checkov findings that are deliberate, skipped in place on the object with their reason. Every
workload skips these two:
- CKV_K8S_15 wants pullPolicy Always; images are pinned by release tag and the policy comes from
  values (IfNotPresent keeps a restarting pod independent of the registry).
- CKV_K8S_43 wants digests; releases are pinned by immutable version tags chosen by the operator.
Usage: include "soa.checkovSkips" (list) or (list "CKV_K8S_35=<why>") for object-specific ones.
*/}}
{{- define "soa.checkovSkips" -}}
{{- $skips := concat (list
  "CKV_K8S_15=Images are pinned by release tag; pullPolicy comes from values (IfNotPresent keeps restarts independent of the registry)"
  "CKV_K8S_43=Images are pinned by immutable release tags chosen by the operator, not by digest"
) . -}}
{{- range $i, $skip := $skips -}}
{{- if $i }}{{ "\n" }}{{ end -}}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end -}}
{{- end -}}

{{/* The reason platform processes take their credentials as environment variables. */}}
{{- define "soa.checkovSkipSecretEnv" -}}
CKV_K8S_35=The platform's one settings class reads credentials from the environment (contract with soa_platform); values come by secretKeyRef and never appear in the manifest
{{- end -}}

{{/*
Quantities, for the quota checks in soa.validateValues.
soa.cpuMillis: "500m" -> 500, "2" -> 2000, "0.5" -> 500.
soa.bytes: "512Mi" -> 536870912, "1G" -> 1000000000, "100" -> 100.
*/}}
{{- define "soa.cpuMillis" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q -}}
{{- trimSuffix "m" $q | int64 -}}
{{- else -}}
{{- mulf (float64 $q) 1000 | int64 -}}
{{- end -}}
{{- end -}}

{{- define "soa.bytes" -}}
{{- $q := toString . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $unit := trimPrefix $number $q -}}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- if not (hasKey $factors $unit) -}}{{- fail (printf "soa-tenant: cannot read quantity %q" $q) -}}{{- end -}}
{{- mulf (float64 $number) (get $factors $unit) | int64 -}}
{{- end -}}

{{/* Whole cores when they are whole ("16"), millicores otherwise ("1500m"). */}}
{{- define "soa.cpuQuantity" -}}
{{- if eq (mod (int64 .) 1000) 0 -}}{{ div (int64 .) 1000 }}{{- else -}}{{ . }}m{{- end -}}
{{- end -}}

{{/*
Every pod the tenant can run at once, as (resources key, pod count): steady-state replicas, one
surge pod per rolling Deployment during a rollout, and the migration Job's pod.
*/}}
{{- define "soa.podBudget" -}}
{{- $v := .Values -}}
{{- $running := not $v.suspended -}}
{{- $pods := list -}}
{{- if and $v.platform.version $running -}}
{{- if gt (int $v.replicas.api) 0 }}{{ $pods = append $pods (list "api" (add1 $v.replicas.api)) }}{{ end -}}
{{- if gt (int $v.replicas.worker) 0 }}{{ $pods = append $pods (list "worker" (add1 $v.replicas.worker)) }}{{ end -}}
{{- $pods = append $pods (list "beat" $v.replicas.beat) -}}
{{- end -}}
{{- if $v.migration.version -}}{{- $pods = append $pods (list "migration" 1) -}}{{- end -}}
{{- if $running -}}
{{- $pods = append $pods (list "postgres" 1) -}}
{{- $pods = append $pods (list "redis" 1) -}}
{{- if $v.components.storage.enabled }}{{ $pods = append $pods (list "minio" 1) }}{{ end -}}
{{- if $v.components.meetings.enabled }}{{ $pods = concat $pods (list (list "janus" 1) (list "coturn" 1)) }}{{ end -}}
{{- end -}}
{{- toJson $pods -}}
{{- end -}}

{{/*
Fail rendering on combinations Kubernetes would accept but that can never work. Single-field
rules (DNS labels, enums, ranges) live in values.schema.json; these are the cross-field ones.
*/}}
{{- define "soa.validateValues" -}}
{{- $v := .Values -}}
{{- if and $v.platform.version (not $v.migration.version) -}}
{{- fail "soa-tenant: platform.version is set but migration.version is empty; a platform release runs only after its migration (set migration.version to platform.version when nothing is pending)" -}}
{{- end -}}
{{- $jobName := include "soa.migrationJobName" . -}}
{{- if gt (len $jobName) 63 -}}
{{- fail (printf "soa-tenant: migration Job name %q is %d characters; Kubernetes allows 63, so migration.version may be at most 51" $jobName (len $jobName)) -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.tenant.domain) -}}
{{- fail "soa-tenant: ingress.enabled is true but tenant.domain is empty; set the domain or disable the ingress" -}}
{{- end -}}
{{- $oidc := $v.identity.oidc -}}
{{- if and $oidc.issuer (not $oidc.clientId) -}}
{{- fail (printf "soa-tenant: identity.oidc.issuer is %q but identity.oidc.clientId is empty; both are needed to sign users in" $oidc.issuer) -}}
{{- end -}}
{{- if and $oidc.clientId (not $oidc.issuer) -}}
{{- fail "soa-tenant: identity.oidc.clientId is set but identity.oidc.issuer is empty" -}}
{{- end -}}
{{- if and $oidc.issuer (not $v.networkPolicy.oidcEgressCIDRs) -}}
{{- fail "soa-tenant: identity.oidc.issuer is set but networkPolicy.oidcEgressCIDRs is empty, so the api could never reach the issuer" -}}
{{- end -}}
{{- $media := $v.networkPolicy.mediaUdpPorts -}}
{{- if and $v.components.meetings.enabled (gt (int $media.janusMin) (int $media.janusMax)) -}}
{{- fail (printf "soa-tenant: networkPolicy.mediaUdpPorts.janusMin (%v) is above janusMax (%v)" $media.janusMin $media.janusMax) -}}
{{- end -}}
{{- if and $v.components.meetings.enabled (gt (int $media.turnMin) (int $media.turnMax)) -}}
{{- fail (printf "soa-tenant: networkPolicy.mediaUdpPorts.turnMin (%v) is above turnMax (%v)" $media.turnMin $media.turnMax) -}}
{{- end -}}
{{- include "soa.validateLimitRange" . -}}
{{- include "soa.validateQuotas" . -}}
{{- end -}}

{{/* The API server rejects a LimitRange whose defaults exceed its max, and pods above max. */}}
{{- define "soa.validateLimitRange" -}}
{{- $lr := .Values.limitRange -}}
{{- range $resource := list "cpu" "memory" -}}
{{- $read := ternary "soa.cpuMillis" "soa.bytes" (eq $resource "cpu") -}}
{{- $max := include $read (get $lr.max $resource) | int64 -}}
{{- $default := include $read (get $lr.default $resource) | int64 -}}
{{- $defaultRequest := include $read (get $lr.defaultRequest $resource) | int64 -}}
{{- if gt $default $max -}}
{{- fail (printf "soa-tenant: limitRange.default.%s (%v) is above limitRange.max.%s (%v)" $resource (get $lr.default $resource) $resource (get $lr.max $resource)) -}}
{{- end -}}
{{- if gt $defaultRequest $default -}}
{{- fail (printf "soa-tenant: limitRange.defaultRequest.%s (%v) is above limitRange.default.%s (%v)" $resource (get $lr.defaultRequest $resource) $resource (get $lr.default $resource)) -}}
{{- end -}}
{{- range $key, $res := $.Values.resources -}}
{{- if gt (include $read (get $res.limits $resource) | int64) $max -}}
{{- fail (printf "soa-tenant: resources.%s.limits.%s (%v) is above limitRange.max.%s (%v); the pod would be rejected" $key $resource (get $res.limits $resource) $resource (get $lr.max $resource)) -}}
{{- end -}}
{{- if gt (include $read (get $res.requests $resource) | int64) (include $read (get $res.limits $resource) | int64) -}}
{{- fail (printf "soa-tenant: resources.%s.requests.%s (%v) is above its limit (%v)" $key $resource (get $res.requests $resource) (get $res.limits $resource)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Pods beyond the ResourceQuota are refused with an event nobody reads and the tenant silently
never becomes Ready; refuse to render instead. Limits may burst to twice quotas.cpu (see
resourcequota.yaml); memory limits must fit quotas.memory.
*/}}
{{- define "soa.validateQuotas" -}}
{{- $v := .Values -}}
{{- $sum := dict "requests.cpu" 0 "limits.cpu" 0 "requests.memory" 0 "limits.memory" 0 -}}
{{- $podCount := 0 -}}
{{- range $entry := include "soa.podBudget" . | fromJsonArray -}}
{{- $res := get $v.resources (index $entry 0) -}}
{{- $count := int64 (index $entry 1) -}}
{{- $podCount = add $podCount $count -}}
{{- $_ := set $sum "requests.cpu" (add (get $sum "requests.cpu") (mul $count (include "soa.cpuMillis" $res.requests.cpu))) -}}
{{- $_ = set $sum "limits.cpu" (add (get $sum "limits.cpu") (mul $count (include "soa.cpuMillis" $res.limits.cpu))) -}}
{{- $_ = set $sum "requests.memory" (add (get $sum "requests.memory") (mul $count (include "soa.bytes" $res.requests.memory))) -}}
{{- $_ = set $sum "limits.memory" (add (get $sum "limits.memory") (mul $count (include "soa.bytes" $res.limits.memory))) -}}
{{- end -}}
{{- $quotaCpu := include "soa.cpuMillis" $v.quotas.cpu | int64 -}}
{{- $quotaMemory := include "soa.bytes" $v.quotas.memory | int64 -}}
{{- $hard := dict "requests.cpu" $quotaCpu "limits.cpu" (mul 2 $quotaCpu) "requests.memory" $quotaMemory "limits.memory" $quotaMemory -}}
{{- range $key := list "requests.cpu" "limits.cpu" "requests.memory" "limits.memory" -}}
{{- $need := get $sum $key | int64 -}}
{{- $allowed := get $hard $key | int64 -}}
{{- if gt $need $allowed -}}
{{- $isCpu := hasSuffix "cpu" $key -}}
{{- $show := ternary (printf "%dm / %dm" $need $allowed) (printf "%dMi / %dMi" (div $need 1048576) (div $allowed 1048576)) $isCpu -}}
{{- fail (printf "soa-tenant: %s needed / allowed by the ResourceQuota: %s (replicas, one surge pod per rolling Deployment and the migration Job); raise quotas.%s or lower resources/replicas" $key $show (ternary "cpu" "memory" $isCpu)) -}}
{{- end -}}
{{- end -}}
{{- if gt (int64 $podCount) (int64 $v.quotas.pods) -}}
{{- fail (printf "soa-tenant: the workloads need %d pods but quotas.pods allows %v" $podCount $v.quotas.pods) -}}
{{- end -}}
{{- $claims := add (include "soa.bytes" $v.persistence.postgres.size) (include "soa.bytes" $v.persistence.redis.size) -}}
{{- if $v.components.storage.enabled -}}
{{- $claims = add $claims (include "soa.bytes" $v.components.storage.capacity) -}}
{{- end -}}
{{- if gt (int64 $claims) (include "soa.bytes" $v.quotas.storage | int64) -}}
{{- fail (printf "soa-tenant: the volumes (postgres %s, redis %s, minio %s) need %dMi but quotas.storage is %s" $v.persistence.postgres.size $v.persistence.redis.size (ternary $v.components.storage.capacity "none" $v.components.storage.enabled) (div $claims 1048576) $v.quotas.storage) -}}
{{- end -}}
{{- end -}}
