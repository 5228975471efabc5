"""The status vocabulary of every kind: phases, condition types and reasons, in one table.

The operator writes them, the CLI and the tests read them, and GitOps tools interpret four of them
without configuration (DESIGN.md section 3): Flux's kstatus reads Reconciling, Stalled and Ready
(plus observedGeneration); Argo CD reads them through the health script the chart ships; Complete
lets `kubectl wait --for=condition=Complete` treat a batch run like a Job.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """status.phase: where a resource is in its life (one word for `kubectl get`)."""

    PENDING = "Pending"
    """Accepted; children being created, queued, waiting for a source, or backing off before a retry."""
    RUNNING = "Running"
    """The workload runs (a batch run, or a service's training stage)."""
    SUCCEEDED = "Succeeded"
    """A batch run finished; its artifacts are published. Terminal."""
    FAILED = "Failed"
    """Failed for good: an invalid spec, a permanent workload failure, or retries used up. Terminal."""
    SUSPENDED = "Suspended"
    """spec.suspend is true: children removed, artifacts kept."""
    READY = "Ready"
    """A service serves."""


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})
ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.RUNNING, Phase.READY})
"""Phases in which the operator keeps the status fresh (a refresh pass now and then)."""


class Cond(StrEnum):
    """Condition types (metav1.Condition, one per type)."""

    # Read by GitOps tools (kstatus, Argo CD) and `kubectl wait`.
    READY = "Ready"
    """True when the observed state matches the spec and is healthy: a batch run running normally or
    finished, a service serving, a suspended resource with its children removed."""
    RECONCILING = "Reconciling"
    """True while the operator works toward the spec: children being created, queued by Kueue,
    rolling out, waiting for a source checkpoint, backing off before a retry."""
    STALLED = "Stalled"
    """True when no progress is possible without a change of spec or configuration: an invalid
    spec, a permanent workload failure, retries used up."""
    COMPLETE = "Complete"
    """Batch kinds only: True once the run finished and published everything."""
    # glassbox's own detail.
    PROGRESSING = "Progressing"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    SUSPENDED = "Suspended"
    TRAINED = "Trained"
    """Service kinds with a training stage: training finished."""
    MODEL_RESOLVED = "ModelResolved"
    STORE_READABLE = "StoreReadable"
    """False while the run manifest cannot be read (progress is what was known before)."""
    PODS_SCHEDULED = "PodsScheduled"
    """False while the workload's pods cannot be created (FailedCreate) or placed (Unschedulable)."""
    CHILDREN_APPLIED = "ChildrenApplied"
    """False while the apiserver refuses a child (Forbidden, Invalid, ...)."""
    PROMOTED = "Promoted"
    """Services that retrain (DialogBot): whether the last newly trained model replaced the serving
    one (eval-gated promotion); the message carries both test metrics."""


class Reason(StrEnum):
    """Condition and event reasons (CamelCase), one table; scripts match on them."""

    # Lifecycle.
    CREATED = "Created"
    CREATING = "Creating"
    PENDING = "Pending"
    QUEUED = "Queued"
    STARTED = "Started"
    RUNNING = "Running"
    COMPLETED = "Completed"
    SUCCEEDED = "Succeeded"
    NOT_FINISHED = "NotFinished"
    NO_FAILURE = "NoFailure"
    DEPLOYING = "Deploying"
    SERVING = "Serving"
    READY = "Ready"
    TRAINING = "Training"
    TRAINING_SUCCEEDED = "TrainingSucceeded"
    TRAINED = "Trained"
    SUSPENDED = "Suspended"
    NOT_SUSPENDED = "NotSuspended"
    RESUMED = "Resumed"
    NOT_STALLED = "NotStalled"
    RECONCILED = "Reconciled"
    RETRAINING = "Retraining"
    """The training spec changed: a new model trains while the old one keeps serving."""
    # Eval-gated promotion (condition Promoted, and its events).
    PROMOTED = "Promoted"
    CANDIDATE_WORSE = "CandidateWorse"
    """The new model's test metric is worse than the serving model's: the old one keeps serving."""
    NO_CANDIDATE = "NoCandidate"
    """The new training published no completed checkpoint, or one without the promotion metric."""
    # Failures and retries.
    ATTEMPT_FAILED = "AttemptFailed"
    BACKING_OFF = "BackingOff"
    RETRYING = "Retrying"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    WORKLOAD_FAILED = "WorkloadFailed"
    PERMANENT_FAILURE = "PermanentFailure"
    """The workload exited with a code that says retrying cannot help (bad input, invalid spec)."""
    INVALID_SPEC = "InvalidSpec"
    # Sources, store, children, scheduling.
    WAITING_FOR_CHECKPOINT = "WaitingForCheckpoint"
    RESOLVED = "Resolved"
    MODEL_RESOLVED = "ModelResolved"
    MANIFEST_UNREADABLE = "ManifestUnreadable"
    MANIFEST_READ = "ManifestRead"
    APPLIED = "Applied"
    CHILD_APPLY_FAILED = "ChildApplyFailed"
    SCHEDULED = "Scheduled"
    FAILED_CREATE = "FailedCreate"
    UNSCHEDULABLE = "Unschedulable"
    # Refused by the operator's configuration (terminal; raised by the renderers).
    UNSUPPORTED_BACKEND = "UnsupportedBackend"
    UNSUPPORTED_TOPOLOGY = "UnsupportedTopology"
    UNKNOWN_NODE_POOL = "UnknownNodePool"
    TOO_MANY_ACCELERATORS = "TooManyAccelerators"
    NO_ARTIFACT_STORE = "NoArtifactStore"
    LOCAL_BACKEND_DISABLED = "LocalBackendDisabled"
    """backend local asked for, and the operator's configuration does not allow it (security.allowLocalBackend)."""
    ENDPOINT_NEEDS_CREDENTIALS = "EndpointNeedsCredentials"
    """spec.storage.endpoint names a store other than the configured one, without its own secretRef."""


__all__ = ["ACTIVE_PHASES", "Cond", "Phase", "Reason", "TERMINAL_PHASES"]
