"""The turn policy's configuration, and where each setting of the gateway goes in it."""

from __future__ import annotations

from dataclasses import dataclass, field

from alice_voice.config import Settings
from alice_voice.conversation.policy.endpointing import EndpointingConfig
from alice_voice.conversation.policy.idle import IdleRules
from alice_voice.conversation.policy.overlap import OverlapRules


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    endpointing: EndpointingConfig = field(default_factory=EndpointingConfig)
    overlap: OverlapRules = field(default_factory=OverlapRules)
    idle: IdleRules = field(default_factory=IdleRules)
    turn_rejoin_ms: int = 1000
    same_utterance_ms: int = 500
    barge_in_pause: bool = True
    max_history: int = 40

    @classmethod
    def from_settings(cls, settings: Settings, *, model_enabled: bool, frame_samples: int = 512) -> PolicyConfig:
        """`frame_samples`: the VAD's frame, which the policy counts audio in."""
        return cls(
            endpointing=EndpointingConfig(
                vad_threshold=settings.vad_threshold,
                vad_exit_threshold=min(settings.vad_threshold, max(0.01, settings.vad_threshold
                                                                    - settings.vad_exit_margin)),
                vad_min_speech_ms=settings.vad_min_speech_ms,
                vad_preroll_ms=settings.vad_preroll_ms,
                eot_silence_ms=settings.eot_silence_ms,
                eot_threshold=settings.eot_threshold,
                eot_recheck_ms=settings.eot_recheck_ms,
                ask_lead_ms=settings.eot_ask_lead_ms,
                eot_fallback_ms=settings.eot_fallback_ms,
                max_wait_ms=settings.eot_max_wait_ms,
                words_finished_at=settings.eot_words_finished,
                words_unfinished_below=settings.eot_words_unfinished,
                silence_only_ms=settings.silence_only_ms,
                model_enabled=model_enabled,
                words_enabled=settings.eot_words,
                frame_samples=frame_samples,
            ),
            overlap=OverlapRules(enabled=settings.backchannels, max_ms=settings.backchannel_max_ms,
                                 short_ms=settings.backchannel_short_ms, phrases=tuple(settings.backchannel_phrases)),
            idle=IdleRules(settings.idle_prompt_s, settings.idle_prompt_text, settings.idle_end_s,
                           settings.idle_farewell_text),
            turn_rejoin_ms=settings.turn_rejoin_ms,
            same_utterance_ms=settings.same_utterance_ms,
            barge_in_pause=settings.barge_in_pause,
        )
