"""The Ray runtime: subscriber shards, trigger-engine shards, the policy learner, the
driver that advances simulated time, checkpoints and recovery; plus the ``inline``
executor that runs the same shards in one process.

Not built yet: see the actors issue.
"""
