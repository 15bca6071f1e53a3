"""The CPU's one owner: the prioritized inference scheduler, and the process's load signals."""

from alice_voice.compute.priority import Lane, Priority, default_lanes
from alice_voice.compute.scheduler import (
    InferenceScheduler,
    JobRunner,
    SchedulerClosed,
    Superseded,
    available_cores,
)

__all__ = ["InferenceScheduler", "JobRunner", "Lane", "Priority", "SchedulerClosed", "Superseded",
           "available_cores", "default_lanes"]
