"""The policy learner: one policy for the whole run, updated at tick boundaries.

:meth:`LearnerCore.decide` is called once per tick with every shard's output for that
tick. It first applies the reward batches (emails whose reward window closed), then
chooses arms for the emails that became due — both in a canonical order that does not
depend on how subscribers are split into shards:

* rewards by (delivery time, email id);
* choices by (due time, subscriber, source, email id), with the generator
  ``numpy.random.default_rng([seed, tick, 0x1EA2])`` — so the same seed gives the same
  arms on 1 or 8 shards, inline or on Ray. Each choice's decision time (``now``) is the
  time its email became due.

With ``policy.draws == "keyed"`` each choice is drawn instead by
:func:`policies.keyed.select_keyed` with the email's key: the trigger id of a rule's
send (``"<rule>:<subscriber>:<entered_at>"``, plus ``":<node>"`` for a journey step,
:func:`policies.triggers.trigger_id`), ``"campaign:<subscriber>:<due>"`` for a campaign
email. The trigger service draws the same way, so for the same trigger and policy state
both choose the same arm with the same propensity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from actors.config import SimulationConfig
from actors.emails import draw_keys
from actors.errors import InternalError
from actors.messages import Arms, Choices, Rewards, TickOutput
from actors.plan import RunPlan
from policies.errors import SpecError
from policies.keyed import select_keyed

__all__ = ["LEARNER_STREAM", "LearnerCore"]

#: Last word of the learner's generator key ``[seed, tick, LEARNER_STREAM]``.
LEARNER_STREAM = 0x1EA2


class LearnerCore:
    """Holds the policy (see the module docstring).

    Parameters
    ----------
    config : SimulationConfig
        Must have a policy.
    """

    def __init__(self, config: SimulationConfig) -> None:
        if config.policy is None:
            raise SpecError("policy: the learner needs a PolicyConfig, got None")
        self.config = config
        self.plan = RunPlan.from_config(config)
        self.policy = RunPlan.policy(config)
        self.keyed = config.policy.draws == "keyed"
        self._rule_ids = (list(config.rules.ids) if config.rules is not None
                          else [])
        self.position = 0
        self.n_updates = 0
        self.n_choices = 0

    def decide(self, tick: int, outputs: Sequence[TickOutput]) -> Arms:
        """Apply the tick's rewards, then choose arms for its emails.

        Parameters
        ----------
        tick : int
            Must be the learner's position.
        outputs : sequence of TickOutput
            Every shard's output of ``tick`` (only ``choices`` and ``rewards`` are read).

        Returns
        -------
        Arms
            An arm (index into ``arm_names``) and its propensity per chosen email, in
            canonical order.
        """
        if tick != self.position:
            raise InternalError(f"tick: expected {self.position} (learner position), "
                                f"got {tick}")
        ctx = self.plan.policy_contexts
        if outputs:
            rew = Rewards.concat([o.rewards for o in outputs])
            if len(rew):
                order = np.lexsort((rew.email_id, rew.time))
                self.policy.update(rew.arm[order], rew.reward[order],
                                   _rows(rew.context, order) if ctx else None,
                                   subscribers=rew.subscriber[order])
                self.n_updates += len(order)
        self.position += 1
        if not outputs:
            return Arms.empty()
        ch = Choices.concat([o.choices for o in outputs])
        if len(ch) == 0:
            return Arms.empty()
        order = np.lexsort((ch.email_id, ch.source, ch.subscriber, ch.due))
        if self.keyed:
            arms, props = select_keyed(
                self.policy, self.keys(ch, order), int(self.config.seed),  # type: ignore[arg-type]
                contexts=_rows(ch.context, order) if ctx else None,
                subscribers=ch.subscriber[order], now=ch.due[order])
        else:
            rng = np.random.default_rng([int(self.config.seed), tick, LEARNER_STREAM])  # type: ignore[arg-type]
            arms, props = self.policy.select(_rows(ch.context, order) if ctx else None, rng,
                                             subscribers=ch.subscriber[order], n=len(order),
                                             now=ch.due[order])
        self.n_choices += len(order)
        return Arms(ch.email_id[order], np.asarray(arms, np.int64),
                    np.asarray(props, np.float64))

    def keys(self, ch: Choices, order: np.ndarray) -> list[str]:
        """The draw key of each choice in ``order`` (module docstring)."""
        if ch.entered_at is None or ch.step is None:
            raise InternalError("choices: keyed draws need entered_at and step")
        return draw_keys(self._rule_ids, ch.source[order], ch.subscriber[order],
                         ch.entered_at[order], ch.step[order])

    def decide_block(self, first: int, count: int,
                     outputs: Sequence[Sequence[TickOutput]]) -> list[Arms]:
        """:meth:`decide` for ticks ``first .. first + count - 1``; ``outputs[i][j]`` is
        shard ``i``'s output of tick ``first + j``. Returns the arms of each tick."""
        for i, out in enumerate(outputs):
            if len(out) != count:
                raise InternalError(f"outputs[{i}]: expected {count} ticks, got {len(out)}")
        return [self.decide(first + j, [out[j] for out in outputs]) for j in range(count)]

    def checkpoint(self) -> dict[str, Any]:
        """Picklable learner state."""
        return {"position": self.position, "policy": self.policy.state_dict(),
                "n_updates": self.n_updates, "n_choices": self.n_choices}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint` output."""
        self.policy.load_state_dict(state["policy"])
        self.position = int(state["position"])
        self.n_updates = int(state["n_updates"])
        self.n_choices = int(state["n_choices"])


def _rows(x: np.ndarray | None, order: np.ndarray) -> np.ndarray:
    """``x[order]`` of a column that the plan guarantees (contexts of contextual runs)."""
    if x is None:
        raise InternalError("contexts: the policy needs contexts, the shards sent none")
    return x[order]
