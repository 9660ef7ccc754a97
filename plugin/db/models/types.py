"""Column type shorthands shared by the models."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Dialect, Integer, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

#: 64-bit primary keys on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY (its rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")


class Decimal4(TypeDecorator[Decimal]):
    """An exact decimal with four places, stored as a whole number of ten-thousandths: SQLite has
    no exact decimal type (its NUMERIC keeps a float), and an integer sums exactly everywhere."""

    impl = BigInteger
    cache_ok = True
    SCALE = Decimal(10_000)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * self.SCALE
        if scaled != scaled.to_integral_value():
            raise ValueError("at most four decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value) / self.SCALE
