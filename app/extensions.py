"""Extension objects, created unbound so that the factory can bind each app it makes."""

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
