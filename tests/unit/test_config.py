"""Config: documented defaults, validation of every field, atomic replacement."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator

import pytest

from erldist import config
from erldist.config import Config, ConfigError
from erldist.term import DecodeLimits
from erldist.tls_settings import TlsSettings


@pytest.fixture(autouse=True)
def _restore_defaults() -> Iterator[None]:
    config.reset()
    yield
    config.reset()


INT_FIELDS = [
    "max_distribution_atoms",
    "health_parallelism",
    "max_message_bytes",
    "mailbox_maxsize",
    "max_payload_size_bytes",
    "max_decoded_list_elements",
]
FLOAT_FIELDS = [
    "health_timeout",
    "connect_timeout",
    "start_timeout",
    "net_ticktime",
    "ping_timeout",
    "default_call_timeout",
    "default_init_timeout",
    "conflict_resolver_timeout",
]


def test_defaults_are_the_documented_ones() -> None:
    cfg = config.default()
    assert cfg.max_distribution_atoms == 10_000
    assert cfg.health_timeout == 8.0
    assert cfg.health_parallelism == 32
    assert cfg.connect_timeout == 7.0
    assert cfg.start_timeout == 10.0
    assert cfg.net_ticktime == 60.0
    assert cfg.ping_timeout == 8.0
    assert cfg.max_message_bytes == 128 * 1024 * 1024
    assert cfg.decode_limits == DecodeLimits()
    assert cfg.mailbox_maxsize == 100_000
    assert cfg.mailbox_overflow == "block"
    assert cfg.max_payload_size_bytes == 4_194_304
    assert cfg.max_decoded_list_elements == 10_000
    assert cfg.default_call_timeout == 5.0
    assert cfg.default_init_timeout == 5.0
    assert cfg.conflict_resolver_timeout == 1.0
    assert cfg.tls is None  # plain TCP
    assert cfg.busy_wait == 0.0002
    assert {f.name for f in dataclasses.fields(Config)} == set(
        INT_FIELDS + FLOAT_FIELDS + ["decode_limits", "mailbox_overflow", "tls", "busy_wait"])


def test_limits_and_policies_are_checked() -> None:
    limits = DecodeLimits(max_elements=5_000_000)
    cfg = config.configure(decode_limits=limits, mailbox_overflow="drop", mailbox_maxsize=10)
    assert (cfg.decode_limits, cfg.mailbox_overflow, cfg.mailbox_maxsize) == (limits, "drop", 10)
    with pytest.raises(ConfigError, match="decode_limits must be a DecodeLimits"):
        config.configure(decode_limits={"max_elements": 1})
    with pytest.raises(ConfigError, match="mailbox_overflow must be one of block, drop"):
        config.configure(mailbox_overflow="spill")
    with pytest.raises(ConfigError, match="max_message_bytes must be within"):
        config.configure(max_message_bytes=2**32)


def test_get_starts_at_the_defaults() -> None:
    assert config.get() == config.default() == Config()


def test_configure_returns_and_installs_the_new_config() -> None:
    new = config.configure(max_distribution_atoms=5, health_timeout=2.5)
    assert config.get() is new
    assert new.max_distribution_atoms == 5
    assert new.health_timeout == 2.5
    assert new.ping_timeout == 8.0  # untouched fields keep their values


def test_configure_keeps_earlier_changes() -> None:
    config.configure(ping_timeout=1.0)
    config.configure(connect_timeout=2.0)
    assert (config.get().ping_timeout, config.get().connect_timeout) == (1.0, 2.0)


def test_configure_with_nothing_changes_nothing() -> None:
    before = config.configure(ping_timeout=3.0)
    assert config.configure() == before


def test_int_seconds_become_floats() -> None:
    cfg = config.configure(health_timeout=3, net_ticktime=15)
    assert type(cfg.health_timeout) is float and cfg.health_timeout == 3.0
    assert type(cfg.net_ticktime) is float


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.get().health_timeout = 1.0  # type: ignore[misc]


def test_reset_goes_back_to_the_defaults() -> None:
    config.configure(max_distribution_atoms=1, net_ticktime=5)
    assert config.reset() == config.default()
    assert config.get() == Config()


def test_default_ignores_the_current_config() -> None:
    config.configure(start_timeout=1.0)
    assert config.default().start_timeout == 10.0


def configure_error(**changes: object) -> str:
    with pytest.raises(ConfigError) as info:
        config.configure(**changes)
    return str(info.value)


def test_unknown_field_is_named() -> None:
    text = configure_error(max_atoms=5)
    assert "Unknown config field: max_atoms" in text
    assert "max_distribution_atoms" in text  # the known ones are listed


def test_several_unknown_fields_are_all_named() -> None:
    assert "bogus, nope" in configure_error(nope=1, bogus=2, ping_timeout=1.0)


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be an int, not bool"),
        (False, "must be an int, not bool"),
        (1.5, "must be an int, not float"),
        (10.0, "must be an int, not float"),
        ("10", "must be an int, not str"),
        (None, "must be an int, not NoneType"),
        (0, "must be >= 1, got 0"),
        (-3, "must be >= 1, got -3"),
    ],
)
def test_int_fields_are_validated(field: str, value: object, message: str) -> None:
    assert configure_error(**{field: value}) == f"Invalid config value: {field} {message}"


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be a number of seconds, not bool"),
        ("8", "must be a number of seconds, not str"),
        (None, "must be a number of seconds, not NoneType"),
        (0, "must be a finite number > 0, got 0"),
        (0.0, "must be a finite number > 0, got 0.0"),
        (-1.0, "must be a finite number > 0, got -1.0"),
        (math.nan, "must be a finite number > 0, got nan"),
        (math.inf, "must be a finite number > 0, got inf"),
        (10**400, "must be finite"),
    ],
)
def test_float_fields_are_validated(field: str, value: object, message: str) -> None:
    assert configure_error(**{field: value}).startswith(f"Invalid config value: {field} {message}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be a number of seconds, not bool"),
        ("0", "must be a number of seconds, not str"),
        (-1e-6, "must be a finite number >= 0, got -1e-06"),
        (math.nan, "must be a finite number >= 0, got nan"),
        (math.inf, "must be a finite number >= 0, got inf"),
        (0.011, "must be within 0..0.01 seconds, got 0.011"),
        (1, "must be within 0..0.01 seconds, got 1"),
    ],
)
def test_busy_wait_is_validated(value: object, message: str) -> None:
    assert configure_error(busy_wait=value) == f"Invalid config value: busy_wait {message}"


@pytest.mark.parametrize("value", [0, 0.0, 1e-6, 0.01])
def test_busy_wait_takes_zero_for_off_and_up_to_ten_milliseconds(value: float) -> None:
    assert config.configure(busy_wait=value).busy_wait == float(value)


@pytest.mark.parametrize("value", [0.5, 3600.5, 86_400])
def test_net_ticktime_stays_in_otps_sane_range(value: float) -> None:
    assert "net_ticktime must be within 1..3600 seconds" in configure_error(net_ticktime=value)


@pytest.mark.parametrize("value", [1, 3600, 0.001, 1e9])
def test_net_ticktime_bounds_do_not_apply_to_other_times(value: float) -> None:
    if 1 <= value <= 3600:
        assert config.configure(net_ticktime=value).net_ticktime == value
    assert config.configure(ping_timeout=value).ping_timeout == value


def test_a_refused_configure_changes_nothing() -> None:
    before = config.configure(ping_timeout=2.0)
    configure_error(health_timeout=1.0, ping_timeout=-1)
    configure_error(health_timeout=1.0, typo=1)
    assert config.get() is before


def test_a_config_built_directly_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="health_parallelism must be >= 1"):
        Config(health_parallelism=0)
    assert Config(connect_timeout=2).connect_timeout == 2.0


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_concurrent_configures_of_different_fields_lose_nothing() -> None:
    rounds = 300
    fields = ["health_timeout", "connect_timeout", "start_timeout", "ping_timeout"]
    start = threading.Barrier(len(fields) + 1)
    errors: list[BaseException] = []

    def hammer(field: str) -> None:
        try:
            start.wait()
            for i in range(1, rounds + 1):
                config.configure(**{field: float(i)})
                # every snapshot a reader sees is a whole, valid config
                assert getattr(config.get(), field) >= 1.0
        except BaseException as exc:  # reported below
            errors.append(exc)

    def read() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                cfg = config.get()
                assert cfg.max_distribution_atoms == 10_000
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(f,)) for f in fields]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert errors == []
    final = config.get()
    assert all(getattr(final, f) == float(rounds) for f in fields)


# --- after a node has started -----------------------------------------------------------


def test_before_any_start_limits_may_grow() -> None:
    assert not config.started()
    config.configure(max_distribution_atoms=5)
    assert config.configure(max_distribution_atoms=50_000).max_distribution_atoms == 50_000


@pytest.mark.parametrize("field", sorted(config.LIMITS - {"decode_limits"}))
def test_after_start_a_limit_tightens_but_never_widens(field: str) -> None:
    config.configure(**{field: 100})
    config.mark_started()
    assert getattr(config.configure(**{field: 50}), field) == 50
    assert getattr(config.configure(**{field: 50}), field) == 50  # unchanged is fine
    with pytest.raises(config.ConfigLimitWidened) as caught:
        config.configure(**{field: 51})
    err = caught.value
    assert (err.field, err.current, err.requested) == (field, 50, 51)
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)
    assert config.config_error_to_string(err) == (
        f"Config limit cannot be widened after start: {field} is 50, asked for 51 "
        "(a limit may only be tightened once a node has started)"
    )
    assert getattr(config.get(), field) == 50


def test_after_start_decode_limits_tighten_field_by_field() -> None:
    config.mark_started()
    tighter = DecodeLimits(max_depth=100, max_elements=2_000_000)
    with pytest.raises(config.ConfigLimitWidened):
        config.configure(decode_limits=tighter)  # one field wider is a widening
    tighter = DecodeLimits(max_depth=100)
    assert config.configure(decode_limits=tighter).decode_limits == tighter
    with pytest.raises(config.ConfigLimitWidened):
        config.configure(decode_limits=DecodeLimits())


def test_after_start_a_start_time_setting_is_fixed() -> None:
    config.mark_started()
    assert config.configure(net_ticktime=60).net_ticktime == 60.0  # the same value is fine
    with pytest.raises(config.ConfigSettingFixed) as caught:
        config.configure(net_ticktime=30)
    assert caught.value.field == "net_ticktime"
    assert config.config_error_to_string(caught.value).startswith(
        "Config setting is fixed after start: net_ticktime is 60.0, asked for 30.0"
    )


def test_after_start_other_settings_change_freely() -> None:
    config.mark_started()
    cfg = config.configure(health_timeout=30.0, ping_timeout=0.5, connect_timeout=20.0,
                           start_timeout=1.0)
    assert (cfg.health_timeout, cfg.ping_timeout) == (30.0, 0.5)


def test_reset_forgets_the_start_for_tests() -> None:
    config.mark_started()
    config.configure(max_distribution_atoms=10)
    config.reset()
    assert not config.started()
    assert config.configure(max_distribution_atoms=20).max_distribution_atoms == 20
    assert "tests only" in (config.reset.__doc__ or "")


def test_every_config_error_is_typed_and_names_its_field() -> None:
    with pytest.raises(config.UnknownConfigField) as unknown:
        config.configure(zeta=1, alpha=2)
    assert unknown.value.fields == ("alpha", "zeta") and unknown.value.field == "alpha"
    assert config.config_error_to_string(unknown.value).startswith(
        "Unknown config field: alpha, zeta (known: "
    )
    with pytest.raises(config.InvalidConfigValue) as invalid:
        config.configure(health_timeout=-1)
    assert invalid.value.field == "health_timeout"
    assert invalid.value.reason == "health_timeout must be a finite number > 0, got -1"
    assert config.config_error_to_string(invalid.value) == (
        "Invalid config value: health_timeout must be a finite number > 0, got -1"
    )


# --- TLS distribution settings ------------------------------------------------------------

TLS = {"certfile": "node.pem", "keyfile": "node.key", "cacertfile": "ca.pem"}


def test_tls_takes_settings_or_a_mapping_of_their_fields() -> None:
    settings = TlsSettings("node.pem", "node.key", "ca.pem", password="pw-not-shown")
    assert config.configure(tls=settings).tls is settings
    from_table = config.configure(tls={**TLS, "versions": ["tlsv1.2", "tlsv1.3"]}).tls
    assert from_table == TlsSettings("node.pem", "node.key", "ca.pem",
                                     versions=("tlsv1.2", "tlsv1.3"))
    assert config.configure(tls=None).tls is None
    assert "pw-not-shown" not in repr(Config(tls=settings))


@pytest.mark.parametrize(("value", "reason"), [
    ("node.pem", "tls must be a TlsSettings, a mapping of its fields, or None, not str"),
    ({**TLS, "verify": "verify_peer"}, "unknown TLS setting(s) verify"),
    ({"certfile": "node.pem"}, "TLS needs keyfile, cacertfile"),
    ({**TLS, "versions": ("tlsv1.1",)}, "unknown TLS version(s) 'tlsv1.1'"),
    ({**TLS, "versions": "tlsv1.2"}, "TLS versions must be a tuple of names"),
    ({**TLS, "versions": [["tlsv1.2"]]}, "TLS versions must be names such as 'tlsv1.2'"),
    (dict([*TLS.items(), ("x", 1), (2, "y")]), "unknown TLS setting(s) 2, x"),
    ({**TLS, "verify_peer": "yes"}, "TLS verify_peer must be True or False, not str"),
    ({**TLS, "certfile": ""}, "TLS certfile must be a non-empty path"),
])
def test_bad_tls_values_are_refused_naming_the_field(value: object, reason: str) -> None:
    with pytest.raises(config.InvalidConfigValue) as caught:
        config.configure(tls=value)
    assert caught.value.field == "tls" and reason in str(caught.value)
    assert config.get().tls is None  # nothing changed


def test_after_start_tls_is_fixed() -> None:
    settings = TlsSettings("node.pem", "node.key", "ca.pem")
    config.configure(tls=settings)
    config.mark_started()
    assert config.configure(tls=dict(TLS)).tls == settings  # the same settings are fine
    with pytest.raises(config.ConfigSettingFixed) as caught:
        config.configure(tls=None)  # no turning TLS off for the next node
    assert caught.value.field == "tls"
    assert config.get().tls == settings
