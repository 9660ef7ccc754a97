"""crm companies: organizations linked to CRM companies, contacts to their company

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_company_links',
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=True),
    sa.Column('fields_hash', sa.String(length=64), nullable=True),
    sa.Column('failure', sa.String(length=500), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['crm_connections.id'], name=op.f('fk_crm_company_links_connection_id_crm_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_crm_company_links_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'organization_id', name=op.f('pk_crm_company_links'))
    )
    with op.batch_alter_table('crm_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('company_crm_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crm_links', schema=None) as batch_op:
        batch_op.drop_column('company_crm_id')
    op.drop_table('crm_company_links')
