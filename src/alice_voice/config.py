"""Settings: one object, read once, from ALICE_* environment variables and an optional file.

A bad value stops start-up with one line naming the setting (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AnyUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

# A list given in the environment as comma-separated text, not JSON.
CommaList = Annotated[list[str], NoDecode]
PHONE_NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
SIP_ADDRESS = re.compile(r"^sips?:[A-Za-z0-9._~+!$&'()*,;=%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def phone_address(address: str) -> bool:
    """A number in E.164 form or a SIP address: somewhere a call can be put through to."""
    return bool(PHONE_NUMBER.fullmatch(address) or SIP_ADDRESS.fullmatch(address))


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming it."""


class Settings(BaseSettings):
    """Every knob of the gateway. Environment: ALICE_<NAME>; file: ALICE_CONFIG_FILE (YAML)."""

    model_config = SettingsConfigDict(env_prefix="ALICE_", extra="forbid", validate_default=True)

    # --- server ---
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    log_content: bool = Field(False, description="Put transcripts and agent text in logs (debug only).")
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    http_read_timeout_s: float = Field(10.0, gt=0, description="A request's headers and body must arrive within "
                                       "this, else 408 and the connection is closed.")
    admin_key: SecretStr | None = None

    # --- sessions ---
    redis_url: AnyUrl | None = Field(None, description="Unset: in-process store.")
    session_ttl_s: float = Field(60.0, gt=0, description="Record TTL; refreshed while the session lives.")
    session_max_s: float = Field(3600.0, gt=0, description="Hard cap on one session's life.")
    max_sessions: int = Field(8, ge=1, description="Hard ceiling on this process's sessions; past it an offer gets "
                              "503 (admission by measured headroom usually refuses sooner).")
    latency_budget_ms: int = Field(500, ge=0, description="Admission: refuse an offer (503 at_capacity) when "
                                   "one more caller would push the first-audio p95 past this. 0: no admission "
                                   "by load, only max_sessions (tests, benchmarks of the saturated box).")
    retry_after_s: int = Field(5, ge=1, description="The Retry-After of a 503 for an offer refused for load.")
    offer_timeout_s: float = Field(8.0, gt=0, description="The longest an offer is worked on, waiting for the "
                                   "models included; a browser gives up on an answer after about 10 s.")
    ice_servers: CommaList = Field(default_factory=list, description="STUN/TURN URLs; empty: none.")
    ice_username: str | None = Field(None, description="Username for the turn:/turns: servers.")
    ice_credential: SecretStr | None = Field(None, description="Password for the turn:/turns: servers.")
    ice_host_addresses: CommaList = Field(default_factory=list,
                                          description="Local addresses offered as ICE host candidates; empty: all.")
    peer_timeout_s: float = Field(5.0, gt=0, description="No media, or disconnected, this long ends a session.")
    ice_connect_timeout_s: float = Field(15.0, gt=0)
    default_mode: Literal["agent", "tone"] = "agent"
    control_timeout_s: float = Field(2.0, gt=0, description="Wait for another process to answer a stop/end.")
    shutdown_grace_s: float = Field(5.0, gt=0, description="Sessions still open when the drain ends are told "
                                    "and closed within this.")
    drain_limit_s: float = Field(300.0, ge=0, description="On SIGTERM (or POST /api/admin/drain) the process "
                                 "stops taking sessions and lets live calls finish for up to this long before "
                                 "it closes the rest and exits (SIGTERM). Kubernetes' grace period must be "
                                 "longer (drain + shutdown grace + a margin).")
    preload_models: bool = Field(True, description="Load the speech models at start-up (in the background).")

    # --- receive path ---
    jitter_buffer: Literal["immediate", "prefetch0", "aiortc"] = "immediate"

    # --- providers ---
    vad: Literal["silero"] = "silero"
    asr: Literal["whisper", "whisper-base", "sphinx", "deepgram", "openai"] = "whisper"
    asr_phone: Literal["same", "whisper", "whisper-base", "sphinx", "deepgram", "openai"] = Field(
        "whisper-base", description="The recognizer of phone calls (their 300-3400 Hz band): Whisper base heard "
        "phone-band speech with 4-27 points less word error than tiny.en, at ~2.2x the decode cost (README: "
        "the phone band). same: the asr setting's.")
    tts: Literal["hibari", "piper", "espeak", "openai", "elevenlabs"] = "hibari"
    agent: Literal["local", "openai"] = "local"
    end_of_turn: Literal["smart_turn", "silence"] = "smart_turn"

    # --- listening ---
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    vad_exit_margin: float = Field(0.15, ge=0, lt=1, description="Speech ends below vad_threshold minus this.")
    vad_min_speech_ms: int = Field(64, ge=0, description="Speech needed to start a turn.")
    vad_preroll_ms: int = Field(256, ge=0, description="Audio kept before speech onset.")
    eot_silence_ms: int = Field(224, ge=0, description="Silence before the end-of-turn model is asked.")
    eot_threshold: float = Field(0.7, gt=0, lt=1)
    eot_recheck_ms: int = Field(200, ge=32, description="Re-ask the model this often while silence grows.")
    eot_ask_lead_ms: int = Field(64, ge=0, description="Ask the end-of-turn model this long before each silence it "
                                 "is asked about, on the audio so far with the rest of the pause's quiet added, "
                                 "so that its run overlaps the wait instead of following it.")
    eot_fallback_ms: int = Field(1200, ge=100, description="Silence that ends a turn when the model and the words "
                                 "do not agree it is over (and the words are not cut mid-sentence).")
    eot_max_wait_ms: int = Field(2500, ge=100, description="Silence that ends a turn whose words stop mid-sentence "
                                 "(\"set a timer for\"): the longest Alice waits for the rest.")
    eot_words: bool = Field(True, description="The end of a turn also takes its words, scored by the completeness "
                            "model: finished words end it at the model's first \"complete\", words cut mid-sentence "
                            "wait up to eot_max_wait_ms.")
    eot_words_finished: float = Field(0.8, ge=0, le=1, description="Words scoring at least this read as finished.")
    eot_words_unfinished: float = Field(0.3, ge=0, le=1, description="Words scoring below this read as cut "
                                        "mid-sentence.")
    silence_only_ms: int = Field(512, ge=100, description="Silence that ends a turn when end_of_turn=silence.")
    compute_threads: int = Field(0, ge=0, le=64, description="Cores the inference scheduler is sized for: that "
                                 "many foreground and background threads; 0: the CPUs this process may use.")
    typed_turns_per_s: float = Field(2.0, gt=0, description="Typed turns (and Twilio key presses) a session may "
                                     "start a second, after a burst of 5; more get an error event `rate_limited`.")
    asr_first_partial_ms: int = Field(160, ge=20, description="Audio of an utterance before its first partial "
                                      "transcript is decoded (the embedded recognizers).")
    asr_partial_interval_ms: int = Field(320, ge=20, description="New audio between later partials, on an idle "
                                         "machine (it stretches with the scheduler's backlog). A Whisper pass "
                                         "costs the same for any length: 320 ms halves the passes of 160 ms, "
                                         "and 97 % of them still change the text shown, against 78 %.")
    asr_timeout_s: float = Field(10.0, gt=0)

    # --- speaking ---
    turn_rejoin_ms: int = Field(1000, ge=0, description="Speech within this long after a turn ended, while its "
                                "reply has only begun, continues that turn (undoes an end of turn read from a "
                                "pause). 0: off.")
    same_utterance_ms: int = Field(500, ge=0, description="Speech over a reply this soon after the caller's last "
                                   "word goes on with their utterance, whatever its words: one utterance, one "
                                   "reply (\"Thanks, that's all for now. | Goodbye!\"). 0: off.")
    backchannels: bool = Field(True, description="An acknowledgement over a reply (\"mm-hmm\", \"okay\") lets it go "
                               "on instead of cutting it.")
    backchannel_max_ms: int = Field(1500, ge=100, description="Speech over a reply longer than this is never a "
                                    "backchannel.")
    backchannel_short_ms: int = Field(700, ge=0, description="A sound over a reply shorter than this is taken "
                                      "as an acknowledgement unless a word in it interrupts (\"wait\", \"no\", a "
                                      "question); 0: only the listed acknowledgements are.")
    backchannel_phrases: CommaList = Field(default_factory=list, description="Acknowledgements beyond the "
                                           "built-in ones (comma-separated).")
    idle_prompt_s: float = Field(20.0, ge=0, description="After a reply, silence this long gets the idle prompt; "
                                 "0: never.")
    idle_prompt_text: str = Field("Are you still there?", min_length=1)
    idle_end_s: float = Field(20.0, ge=0, description="Silence this long after the idle prompt ends the session "
                              "with the farewell; 0: never.")
    idle_farewell_text: str = Field("It seems you've stepped away. Goodbye for now!", min_length=1)
    barge_in_pause: bool = Field(True, description="Pause the reply on the first speech frame; cut it once the "
                                 "speech lasts vad_min_speech_ms, resume if it does not (a cough).")
    echo_guard: bool = True
    echo_max_delay_ms: int = Field(600, ge=20, le=1000, description="Longest echo path the guard searches (a "
                                   "client's jitter buffer can grow by a few hundred ms after a stall).")
    echo_residual_ratio: float = Field(0.35, gt=0, lt=1, description="Below this share of unexplained energy, "
                                       "an incoming frame is our own echo.")
    playout_buffer_ms: int = Field(60, ge=40, le=80)
    tts_voice: str | None = None
    tts_timeout_s: float = Field(10.0, gt=0)
    agent_timeout_s: float = Field(15.0, gt=0)

    # --- telephony ---
    public_url: str | None = Field(None, pattern=r"^https?://[^/]+$", description="How callers' providers reach "
                                   "this gateway (https://alice.example.com): the TwiML's stream URL, and the "
                                   "URL Twilio signs. Unset: taken from the request.")
    twilio_auth_token: SecretStr | None = Field(None, description="Verify X-Twilio-Signature with it.")
    twilio_allow_unsigned: bool = Field(False, description="Without twilio_auth_token, take Twilio requests "
                                        "unverified (development only); otherwise they are refused.")
    twilio_start_timeout_s: float = Field(5.0, gt=0, description="A media stream must send its start this soon "
                                          "after the handshake (Twilio sends it at once); until then it is no "
                                          "session and holds no capacity.")

    twilio_account_sid: str | None = Field(None, pattern=r"^AC[0-9a-fA-F]{32}$", description="With "
                                           "twilio_auth_token: the REST API for call control (hang up, "
                                           "transfer) and outbound calls.")
    twilio_api_url: str = Field("https://api.twilio.com", pattern=r"^https?://[^/]+$",
                                description="Twilio's REST API (a test points it at a fake).")
    twilio_from_number: str | None = Field(None, pattern=r"^\+[1-9][0-9]{6,14}$",
                                           description="The caller ID of outbound calls (a number of the account).")
    outbound_answer_timeout_s: int = Field(30, ge=5, le=600, description="An outbound call that is not answered "
                                           "within this is given up (Twilio's Timeout).")
    voicemail_message: str = Field("Hello, this is Alice calling. Please call us back when you can. Goodbye.",
                                   min_length=1, description="Left on an answering machine after its beep.")
    transfer_targets: dict[str, str] = Field(default_factory=dict, description="Who the agent may put a caller "
                                             "through to, by name: {\"sales\": \"+15551230000\", \"desk\": "
                                             "\"sip:desk@pbx.example.com\"} (JSON in the environment).")
    transfer_any_number: bool = Field(False, description="Let the agent transfer to any number it is given, not "
                                      "only to transfer_targets (a caller could have it dial anywhere).")

    # --- SIP (a PBX or a trunk calls Alice directly) ---
    sip_port: int | None = Field(None, ge=1, le=65535, description="Take SIP calls on this UDP and TCP port "
                                 "(5060); unset: no SIP.")
    sip_host: str | None = Field(None, description="Where SIP and RTP listen; unset: host.")
    sip_public_address: str | None = Field(None, description="The address callers reach (behind NAT: the "
                                           "public one), put in the SDP and Contact; unset: sip_host.")
    sip_rtp_ports: str = Field("20000-20999", pattern=r"^[0-9]{4,5}-[0-9]{4,5}$", description="The UDP ports of "
                               "calls' media, two a call (RTP and RTCP); open them in the firewall.")
    sip_username: str | None = Field(None, min_length=1, description="With sip_password: callers must answer "
                                     "a digest challenge (RFC 3261, MD5) with these.")
    sip_password: SecretStr | None = None
    sip_trusted_networks: CommaList = Field(default_factory=list, description="Addresses (CIDR) whose INVITEs "
                                            "are taken without a challenge: a trunk's or a PBX's signalling.")
    sip_allow_anyone: bool = Field(False, description="Take INVITEs from anyone, unauthenticated (development "
                                   "only); otherwise a caller needs the credential or a trusted address.")
    sip_invites_per_s: float = Field(10.0, gt=0, description="New INVITEs one address may send a second (a "
                                     "burst of 20); beyond them it is answered 503 and then ignored.")

    # --- tools ---
    tools: bool = Field(True, description="Offer tools to the agent (the built-ins, and those of tools_file).")
    tools_file: str | None = Field(None, description="TOML file declaring webhook tools and MCP servers, and "
                                   "which built-in tools to offer (README: Tools).")
    tool_rounds: int = Field(3, ge=1, le=10, description="Rounds of tool calls the model may ask for in one reply.")
    tool_filler_ms: int = Field(1000, ge=0, description="A tool call still running after this long gets the "
                                "filler, once per reply; 0: never.")
    tool_filler_text: str = Field("One moment.", min_length=1)

    # --- cloud providers ---
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_model: str = "llama3.2"
    llm_api_key: SecretStr | None = None
    llm_system_prompt: str = "You are Alice, a concise, friendly voice assistant. Answer in one or two short sentences."
    deepgram_url: str = "wss://api.deepgram.com/v1/listen"
    deepgram_api_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: SecretStr | None = None

    @model_validator(mode="after")
    def _waits_in_order(self) -> Settings:
        if not self.eot_silence_ms < self.eot_fallback_ms <= self.eot_max_wait_ms:
            raise ValueError("need eot_silence_ms < eot_fallback_ms <= eot_max_wait_ms")
        if self.eot_ask_lead_ms > self.eot_silence_ms:
            raise ValueError("need eot_ask_lead_ms <= eot_silence_ms")
        if self.eot_words_unfinished > self.eot_words_finished:
            raise ValueError("need eot_words_unfinished <= eot_words_finished")
        return self

    @property
    def takes_phone_calls(self) -> bool:
        """Twilio's requests are taken (verified, or unverified in development), or SIP calls."""
        return self.twilio_auth_token is not None or self.twilio_allow_unsigned or self.sip_port is not None

    @field_validator("transfer_targets")
    @classmethod
    def _reachable_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, address in value.items():
            if not phone_address(address):
                raise ValueError(f"{name!r}: {address!r} is not an E.164 number (+15551230000) or a SIP address")
        return value

    @field_validator("latency_budget_ms")
    @classmethod
    def _a_reachable_budget(cls, value: int) -> int:
        if 0 < value < 100:
            raise ValueError("a latency budget under 100 ms admits nobody: use 100 or more, or 0 for none")
        return value

    @field_validator("sip_rtp_ports")
    @classmethod
    def _port_pairs(cls, value: str) -> str:
        low, high = (int(port) for port in value.split("-"))
        if not 1024 <= low < high <= 65535 or high - low < 1:
            raise ValueError("need 1024 <= low < high <= 65535")
        return value

    @field_validator("sip_trusted_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # (its ValueError names the bad one)
        return value

    @model_validator(mode="after")
    def _sip_credential_whole(self) -> Settings:
        if (self.sip_username is None) != (self.sip_password is None):
            raise ValueError("set sip_username and sip_password together")
        listening = self.sip_host or self.host
        if self.sip_port is not None and not self.sip_public_address and listening in ("0.0.0.0", "::", ""):
            # (the SDP would say c=0.0.0.0, which callers read as "on hold": they would send nothing)
            raise ValueError(f"SIP listens on {listening!r}: set sip_public_address to the address callers reach")
        return self

    @field_validator("ice_servers", "ice_host_addresses", "backchannel_phrases", "sip_trusted_networks",
                     mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("ALICE_CONFIG_FILE")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(config_file)))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning a validation failure into one readable line."""
    config_file = os.environ.get("ALICE_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"ALICE_CONFIG_FILE: no such file: {config_file}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        raise SettingsError(f"ALICE_{name.upper()}: {first['msg']} (got {first.get('input')!r})") from None
