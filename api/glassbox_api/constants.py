"""Names shared by the operator, the workloads and the CRDs: one place, no drift."""

GROUP = "glassbox.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "glassbox"

# Kopf and server-side apply identities.
FIELD_MANAGER = "glassbox-operator"
ANNOTATION_PREFIX = f"operator.{GROUP}"
FINALIZER = f"{GROUP}/artifact-cleanup"
LABEL_PREFIX = GROUP

# Every label/annotation key the operator stamps on children.
LABEL_KIND = f"{GROUP}/kind"
LABEL_NAME = f"{GROUP}/name"
LABEL_UID = f"{GROUP}/uid"
LABEL_ATTEMPT = f"{GROUP}/attempt"
