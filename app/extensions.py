"""Extension objects, created unbound so that the factory can bind each app it makes."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """The models' base: typed columns (`Mapped[...]`, `mapped_column`), SQLAlchemy 2 style."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
