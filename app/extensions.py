"""Extension objects, created unbound so that the factory can bind each app it makes."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()
