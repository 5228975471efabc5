"""Redco in JAX: automatic tensor-parallel sharding and the three-function interface.

    deployer = Deployer(n_model_shards=2, seed=0)
    trainer = Trainer(deployer, collate_fn, loss_fn, params, optax.adamw(1e-4))
    trainer.fit(train_examples, per_device_batch_size=8, n_epochs=1)
    preds = Predictor(deployer, collate_fn, pred_fn).predict(examples, 8, trainer.params)
"""

from .autoshard import ACCELERATOR_MEMORY, AutoChoice, Pool, choose_model_shards, pool_info
from .deployer import Deployer
from .mesh import DistributedInit, distributed_init_args, initialize_distributed, make_mesh
from .predictor import Predictor
from .sharding import ParamPlan, classify, follow_params, param_specs, plan_params, state_bytes_per_device
from .trainer import Cursor, FitResult, Trainer, TrainState

__all__ = [
    "ACCELERATOR_MEMORY", "AutoChoice", "Cursor", "Deployer", "DistributedInit", "FitResult", "ParamPlan", "Pool",
    "Predictor", "TrainState", "Trainer", "choose_model_shards", "classify", "distributed_init_args",
    "follow_params", "initialize_distributed", "make_mesh", "param_specs", "plan_params", "pool_info",
    "state_bytes_per_device",
]
