{{/*
Chart name, truncated to 63 characters (the DNS label limit of names and label values).
*/}}
{{- define "glassbox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used as the prefix of every resource: "<release>-<chart>", or "<release>" when the
release name already contains the chart name (so `helm install glassbox` gives "glassbox").
*/}}
{{- define "glassbox.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"name-version" for the helm.sh/chart label.
*/}}
{{- define "glassbox.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "glassbox.labels" -}}
helm.sh/chart: {{ include "glassbox.chart" . }}
{{ include "glassbox.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: glassbox
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the operator pods. Immutable once a Deployment exists: never add to these.
*/}}
{{- define "glassbox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "glassbox.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The operator's ServiceAccount name.
*/}}
{{- define "glassbox.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "glassbox.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image reference: registry/repository, then @digest when pinned, else :tag
(default: the chart's appVersion).
*/}}
{{- define "glassbox.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .Values.image.registry) .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
True ("true") when the operator watches every namespace; empty otherwise. Cluster-wide watching
pairs with ClusterRole/ClusterRoleBinding, a namespace list with one Role/RoleBinding each.
*/}}
{{- define "glassbox.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
The operator configuration file (config.yaml in the ConfigMap). One source for the ConfigMap and
for the checksum annotation that rolls the Deployment when it changes.
*/}}
{{- define "glassbox.config" -}}
# Rendered by the glassbox Helm chart from its values; edit the values, not this file.
apiVersion: glassbox.dev/v1alpha1
kind: OperatorConfig
{{ toYaml (dict "nodePools" .Values.nodePools "storage" .Values.storage "defaults" .Values.defaults "security" .Values.security "operatorNamespace" .Release.Namespace) }}
{{- end }}

{{/*
Workload rules: what the operator needs in every namespace it serves. Rendered into a
ClusterRole (all namespaces) or into one Role per watched namespace, never both.
Every resource and verb is named: no wildcards, so a new engine CRD in the same group grants
nothing by accident.
*/}}
{{- define "glassbox.workloadRules" -}}
# The glassbox resources themselves: Kopf watches them and patches its annotations and
# finalizers; status is written once per pass through the status subresource. The operator
# never creates or deletes a user's resource.
- apiGroups: ["glassbox.dev"]
  resources: ["pretrainruns", "shardedfinetunes", "scorerservices", "kgharvests", "metricevals", "dialogbots"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["glassbox.dev"]
  resources: ["pretrainruns/status", "shardedfinetunes/status", "scorerservices/status", "kgharvests/status", "metricevals/status", "dialogbots/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["glassbox.dev"]
  resources: ["scorerservices/scale", "dialogbots/scale"]
  verbs: ["get", "patch", "update"]
# Children carry ownerReferences with blockOwnerDeletion: the OwnerReferencesPermissionEnforcement
# admission plugin requires update on the owner's finalizers subresource for that.
- apiGroups: ["glassbox.dev"]
  resources: ["pretrainruns/finalizers", "shardedfinetunes/finalizers", "scorerservices/finalizers", "kgharvests/finalizers", "metricevals/finalizers", "dialogbots/finalizers"]
  verbs: ["update"]
# Children, applied server-side under one field manager (patch; create when new); read by name
# once per pass (get, never listed or watched); deleted on suspend and when a failed child is
# retried.
- apiGroups: ["ray.io"]
  resources: ["rayjobs"]
  verbs: ["get", "create", "patch", "delete"]
# No RayCluster access: a RayJob's own status (jobStatus, jobDeploymentStatus) is all the operator
# reads; KubeRay creates and deletes the RayCluster.
- apiGroups: ["jobset.x-k8s.io"]
  resources: ["jobsets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices"]
  verbs: ["get", "create", "patch", "delete"]
# Spec files mounted into workload pods.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "delete"]
# One ServiceAccount per served model, referencing the user's storage Secret by name for KServe's
# storage initializer. Creating it needs no access to the Secret.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create", "patch", "delete"]
# Workload pods (label glassbox.dev/uid) are watched to report scheduling (PodsScheduled,
# Unschedulable) in the status; the operator never creates, reads one by one or changes a pod.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Kubernetes Events (Kopf posts core/v1 events; the events.k8s.io/v1 API is the same store).
# FailedCreate warnings are watched too: a child's (missing PriorityClass, quota, admission) goes
# into status.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- with .Values.rbac.secretNames }}
# Existence checks of the named storage credentials Secrets (rbac.secretNames), by name only.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
{{- end }}

{{/*
Prefix of the operator's cluster-scoped RBAC objects. A cluster-wide operator is one per cluster
and keeps the plain full name; namespace-scoped releases may repeat a release name in several
namespaces, so theirs carry the release namespace.
*/}}
{{- define "glassbox.clusterRbacName" -}}
{{- if include "glassbox.clusterWide" . }}
{{- include "glassbox.fullname" . }}
{{- else }}
{{- printf "%s-%s" (include "glassbox.fullname" .) .Release.Namespace | trunc 53 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Kopf peering rules: get/list/watch to see the other replicas, patch to post keep-alives.
*/}}
{{- define "glassbox.peeringRules" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ if include "glassbox.clusterWide" . }}"clusterkopfpeerings"{{ else }}"kopfpeerings"{{ end }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
