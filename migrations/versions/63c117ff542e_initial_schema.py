"""initial schema

Revision ID: 63c117ff542e
Revises: 
Create Date: 2026-11-29 00:51:56.012655
"""
from alembic import op
import sqlalchemy as sa


revision = '63c117ff542e'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ingest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ingest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_fingerprint'), ['fingerprint'], unique=False)

    op.create_table('report',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('csv', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_status'), ['status'], unique=False)

    op.create_table('store',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('store_id')
    )
    op.create_table('business_hours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_pk', sa.Integer(), nullable=False),
    sa.Column('day_of_week', sa.SmallInteger(), nullable=False),
    sa.Column('start_local_s', sa.Integer(), nullable=False),
    sa.Column('end_local_s', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['store_pk'], ['store.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('business_hours', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_business_hours_store_pk'), ['store_pk'], unique=False)

    op.create_table('ingest_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ingest_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('read', sa.Integer(), nullable=False),
    sa.Column('loaded', sa.Integer(), nullable=False),
    sa.Column('duplicate', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ingest_id'], ['ingest.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ingest_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_file_ingest_id'), ['ingest_id'], unique=False)

    op.create_table('ingest_rejection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ingest_id', sa.Integer(), nullable=False),
    sa.Column('file', sa.String(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['ingest_id'], ['ingest.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ingest_rejection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_rejection_ingest_id'), ['ingest_id'], unique=False)

    op.create_table('store_status',
    sa.Column('store_pk', sa.Integer(), nullable=False),
    sa.Column('timestamp_us', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['store_pk'], ['store.id'], ),
    sa.PrimaryKeyConstraint('store_pk', 'timestamp_us'),
    sqlite_with_rowid=False
    )
    op.create_table('store_timezone',
    sa.Column('store_pk', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('timezone_str', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['store_pk'], ['store.id'], ),
    sa.PrimaryKeyConstraint('store_pk')
    )


def downgrade():
    op.drop_table('store_timezone')
    op.drop_table('store_status')
    with op.batch_alter_table('ingest_rejection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_rejection_ingest_id'))

    op.drop_table('ingest_rejection')
    with op.batch_alter_table('ingest_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_file_ingest_id'))

    op.drop_table('ingest_file')
    with op.batch_alter_table('business_hours', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_business_hours_store_pk'))

    op.drop_table('business_hours')
    op.drop_table('store')
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_status'))

    op.drop_table('report')
    with op.batch_alter_table('ingest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_fingerprint'))

    op.drop_table('ingest')
