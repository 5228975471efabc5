"""Multi-host start-up: jax.distributed arguments from a JobSet pod's environment (a pure function)."""

from __future__ import annotations

import pytest

from glassbox_workloads.redco.mesh import distributed_init_args

BASE = {"JOBSET_NAME": "amber-ft", "REPLICATED_JOB_NAME": "workers", "GLASSBOX_NUM_PROCESSES": "4"}


def test_single_process_needs_nothing():
    assert distributed_init_args({}) is None
    assert distributed_init_args({"JOB_COMPLETION_INDEX": "0"}, num_processes=1) is None


def test_coordinator_is_pod_zero_of_job_zero_behind_the_headless_service():
    args = distributed_init_args({**BASE, "JOB_COMPLETION_INDEX": "3"})
    assert args.coordinator_address == "amber-ft-workers-0-0.amber-ft:8476"
    assert args.num_processes == 4 and args.process_id == 3
    assert args.kwargs() == {"coordinator_address": "amber-ft-workers-0-0.amber-ft:8476", "num_processes": 4,
                             "process_id": 3}


def test_num_processes_from_the_spec_when_the_env_lacks_it():
    env = {k: v for k, v in BASE.items() if k != "GLASSBOX_NUM_PROCESSES"}
    args = distributed_init_args({**env, "JOB_COMPLETION_INDEX": "1"}, num_processes=2)
    assert (args.num_processes, args.process_id) == (2, 1)


def test_one_job_per_tpu_slice_numbers_processes_across_jobs():
    env = {**BASE, "GLASSBOX_NUM_PROCESSES": "8", "JOB_INDEX": "1", "GLASSBOX_PODS_PER_JOB": "4",
           "JOB_COMPLETION_INDEX": "2"}
    assert distributed_init_args(env).process_id == 6


def test_overrides_port_subdomain_and_address():
    env = {**BASE, "JOB_COMPLETION_INDEX": "0", "GLASSBOX_COORDINATOR_PORT": "1234", "GLASSBOX_JOBSET_SUBDOMAIN": "net"}
    assert distributed_init_args(env).coordinator_address == "amber-ft-workers-0-0.net:1234"
    env = {"GLASSBOX_NUM_PROCESSES": "2", "GLASSBOX_COORDINATOR_ADDRESS": "10.0.0.5:9000", "JOB_COMPLETION_INDEX": "1"}
    assert distributed_init_args(env).coordinator_address == "10.0.0.5:9000"


@pytest.mark.parametrize("env,msg", [
    ({"GLASSBOX_NUM_PROCESSES": "2", "JOB_COMPLETION_INDEX": "0"}, "coordinator"),
    ({**BASE}, "JOB_COMPLETION_INDEX"),
    ({**BASE, "JOB_COMPLETION_INDEX": "4"}, "outside"),
])
def test_incomplete_environments_fail_with_a_reason(env, msg):
    with pytest.raises(ValueError, match=msg):
        distributed_init_args(env)
