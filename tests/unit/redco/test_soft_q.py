"""Soft-Q properties (SEEDS.md section 7) and a synthetic task whose reward training must raise."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from glassbox_workloads.recipes import soft_q  # noqa: E402
from glassbox_workloads.recipes.soft_q import (  # noqa: E402
    masked_reverse_cumsum,
    multi_step_pcl,
    pcl_loss,
    polyak,
    shape_reward,
    single_step_pcl,
    soft_values,
)


def bellman_consistent(rng, b=3, t=6, v=7, lengths=(6, 4, 1)):
    """Random logits, then Q(s_t, a_t) set back to front so that Q(s_t, a_t) = V(s_{t+1}), Q(s_T, a_T) = r."""
    k1, k2, k3 = jax.random.split(rng, 3)
    logits = np.array(jax.random.normal(k1, (b, t, v)) * 2.0)
    actions = np.array(jax.random.randint(k2, (b, t), 0, v))
    reward = np.array(jax.random.normal(k3, (b,)) * 3.0)
    mask = np.zeros((b, t), np.float32)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        nxt_v = reward[i]
        for s in range(n - 1, -1, -1):
            logits[i, s, actions[i, s]] = nxt_v  # Q(s_t, a_t) = V(s_{t+1}) (or r at the end)
            nxt_v = float(jax.nn.logsumexp(jnp.asarray(logits[i, s])))
    return jnp.asarray(logits), jnp.asarray(actions), jnp.asarray(mask), jnp.asarray(reward)


def test_losses_vanish_on_bellman_consistent_logits_with_target_equal_online():
    logits, actions, mask, reward = bellman_consistent(jax.random.key(0))
    assert float(single_step_pcl(logits, logits, actions, mask, reward)) < 1e-8
    assert float(multi_step_pcl(logits, logits, actions, mask, reward)) < 1e-8
    assert float(pcl_loss(logits, logits, actions, mask, reward, "both")) < 1e-8
    # and they do not vanish once the logits are perturbed
    bad = logits.at[0, 2].add(0.5)
    assert float(single_step_pcl(bad, bad, actions, mask, reward)) > 1e-3
    assert float(multi_step_pcl(bad, bad, actions, mask, reward)) > 1e-3


def test_masked_reverse_cumsum_of_a_is_log_pi_of_the_suffix():
    rng = jax.random.key(1)
    logits = jax.random.normal(rng, (2, 5, 4))
    actions = jnp.array([[0, 1, 2, 3, 0], [3, 3, 1, 0, 2]])
    mask = jnp.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], jnp.float32)
    _, _, a = soft_values(logits, actions)
    got = np.asarray(masked_reverse_cumsum(a, mask))
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    for i in range(2):
        n = int(mask[i].sum())
        for s in range(5):
            if s >= n:
                assert got[i, s] == 0
                continue
            # probability of the remaining suffix a_s..a_{n-1}, multiplied step by step
            p = np.prod([probs[i, u, int(actions[i, u])] for u in range(s, n)])
            np.testing.assert_allclose(got[i, s], np.log(p), rtol=1e-5)


def test_polyak_tau_one_copies_exactly_and_small_tau_moves_slightly():
    online = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
    target = {"w": jnp.zeros((2, 3)), "b": jnp.full(3, 5.0)}
    copy = polyak(target, online, 1.0)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), copy, online)
    moved = polyak(target, online, 0.001)
    np.testing.assert_allclose(np.asarray(moved["b"]), 0.999 * 5 + 0.001 * 1, rtol=1e-6)


def test_reward_shaping_maps_0_to_min_and_100_to_max():
    assert shape_reward(0.0, -50.0, 50.0) == -50.0
    assert shape_reward(100.0, -50.0, 50.0) == 50.0
    assert shape_reward(50.0, -10.0, 30.0) == 10.0
    np.testing.assert_allclose(shape_reward(np.array([0.0, 100.0]), 2.0, 4.0), [2.0, 4.0])


class Chars:
    """A tiny character tokenizer for the synthetic task: 0 pad, 1 bos, 2 eos, then letters."""

    pad_id, bos_id, eos_id = 0, 1, 2
    letters = "abcdefgh"
    vocab_size = 3 + len(letters)

    def encode(self, text):
        return [3 + self.letters.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.letters[i - 3] for i in ids if int(i) >= 3)


def contains_h(prompts, outputs):
    """Raw reward in [0, 100]: 100 when the output contains the target token 'h'."""
    return [100.0 if "h" in o else 0.0 for o in outputs]


@pytest.mark.slow
def test_soft_q_training_raises_the_mean_reward_on_a_known_task():
    import optax

    from glassbox_workloads.flax_models import build_model, init_params, tiny_config
    from glassbox_workloads.recipes.causal_lm import decoder_apply
    from glassbox_workloads.redco import Deployer, Trainer

    tok = Chars()
    cfg = tiny_config("gpt2", vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_layers=1,
                      num_heads=2, max_position_embeddings=16)
    model = build_model(cfg)
    apply_fn = decoder_apply(model)
    recipe = soft_q.make(apply_fn, tok, contains_h, max_prompt_length=1, max_new_tokens=6, tau=0.05, mix=0.5,
                         reward_min=-5.0, reward_max=5.0, top_k=0)
    rs = np.random.RandomState(0)
    # the dataset: random strings, a third of them with the rewarded token
    data = []
    for i in range(96):
        s = "".join(rs.choice(list("abcdefg"), size=5))
        if i % 3 == 0:
            s = s[:2] + "h" + s[3:]
        data.append({"target": s})
    params = init_params(cfg, jax.random.key(0))
    sampler = soft_q.make_sampler(apply_fn, tok, 6)
    prompts = jnp.ones((256, 1), jnp.int32)  # bos only

    def mean_reward(p, seed):
        rows = np.asarray(sampler(jax.random.key(seed), p, prompts, jnp.ones_like(prompts)))
        outs = [tok.decode(list(r)[: list(r).index(2)] if 2 in list(r) else list(r)) for r in rows]
        return float(np.mean(contains_h(None, outs)))

    before = mean_reward(params, 1)
    d = Deployer(n_model_shards=1, seed=0)
    tr = Trainer(d, recipe.collate_fn, recipe.loss_fn, params, optax.adam(3e-3), init_extra=recipe.init_extra,
                 update_extra=recipe.update_extra, augment_fn=recipe.augment_fn)
    tr.fit(data, per_device_batch_size=16, n_epochs=30, max_steps=120, log_every=0)
    after = mean_reward(tr.params, 2)
    print("mean reward before/after", before, after)
    assert after > before + 20, (before, after)
