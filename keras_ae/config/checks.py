"""The configuration's error and the checks its dataclasses share."""


class ConfigError(ValueError):
    """A configuration value is invalid. `field` names the offending field."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def require_positive(config, *fields):
    for field in fields:
        value = getattr(config, field)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ConfigError(field, f"must be a positive integer, got {value!r}")


def require_non_negative(config, *fields):
    for field in fields:
        value = getattr(config, field)
        if value is not None and not value >= 0:  # also rejects NaN
            raise ConfigError(field, f"must be >= 0, got {value!r}")


def require_choice(field, value, choices):
    if value not in choices:
        raise ConfigError(
            field, f"unknown value {value!r}; valid values: {', '.join(choices)}"
        )


def require_choices(config, field, choices):
    """Turns a comma-separated string or a list into a tuple of valid choices."""
    value = getattr(config, field)
    values = tuple(value.split(",") if isinstance(value, str) else value)
    if not values:
        raise ConfigError(field, f"must name at least one of: {', '.join(choices)}")
    for item in values:
        require_choice(field, item, choices)
    object.__setattr__(config, field, values)
