"""The Data stack's global tables as seen from one region, and the exact access each Lambda gets.

The tables are imported by name so both regions address their local replica with the same code.
The grants live here, beside the tables, so what a Lambda may do to the data is read in one place:
exact actions on exactly these tables (no index wildcard) and their key (no action wildcard).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.lambda_settings import TableNames

_READ_AND_APPEND = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
                    "dynamodb:ConditionCheckItem"]  # fmt: skip
_DELETE = ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]  # DELETE /conversations/{id}: header and turns
# A user's documents: created on upload, status updated by ingest, listed by owner, deleted.
_DOCUMENTS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"]


class RegionalTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: TableNames, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.names = names
        self.key = key

        def imported(logical_id: str, name: str) -> dynamodb.ITableV2:
            return dynamodb.TableV2.from_table_attributes(self, logical_id, table_name=name, encryption_key=key)

        self.conversations = imported("Conversations", names.conversations)
        self.response_cache = imported("ResponseCache", names.response_cache)
        self.jobs = imported("JobsTable", names.jobs)
        self.idempotency = imported("Idempotency", names.idempotency)
        self.usage = imported("Usage", names.usage)
        self.documents = imported("Documents", names.documents)
        self.prompts = imported("Prompts", names.prompts) if names.prompts else None
        self.curated = imported("CuratedAnswers", names.curated) if names.curated else None

    def grant_api(self, role: iam.IRole) -> None:
        """Chat, own history (read, append, delete), the answer cache, job submit and status. Deleting a
        conversation also deletes its cached answers, its jobs and their idempotency records."""
        self._grant(role, "OwnConversationsTable", [*_READ_AND_APPEND, *_DELETE], self.conversations)
        self._grant(
            role, "ResponseCache", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], self.response_cache
        )
        job_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                       "dynamodb:DeleteItem"]  # fmt: skip
        self._grant(role, "Jobs", job_actions, self.jobs)
        self._grant(role, "IdempotencyOfDeletedConversations", ["dynamodb:DeleteItem"], self.idempotency)
        # Request rate (conditional add), token budgets (the day's items of every region read, this region's added).
        self._grant(role, "UsageCounters", ["dynamodb:UpdateItem", "dynamodb:Query"], self.usage)
        self._grant_prompts(role)
        self._grant_curated(role)
        self._grant_key(role)

    def grant_worker(self, role: iam.IRole) -> None:
        """Answer jobs: history read and append (never delete), the cache, job updates, idempotency records."""
        self._grant(role, "OwnConversationsTable", _READ_AND_APPEND, self.conversations)
        self._grant(role, "ResponseCache", ["dynamodb:GetItem", "dynamodb:PutItem"], self.response_cache)
        self._grant(role, "Jobs", ["dynamodb:GetItem", "dynamodb:UpdateItem"], self.jobs)
        idempotency_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
        self._grant(role, "Idempotency", idempotency_actions, self.idempotency)
        self._grant(role, "UsageCounters", ["dynamodb:UpdateItem", "dynamodb:Query"], self.usage)  # token budgets
        self._grant_prompts(role)
        self._grant_curated(role)
        self._grant_key(role)

    def grant_stream(self, role: iam.IRole) -> None:
        """Streamed chat (ADR 0004): history read and append (never delete), the cache, the per-user counters; no
        jobs and no idempotency records (the WebSocket path neither submits nor sheds to jobs)."""
        self._grant(role, "OwnConversationsTable", _READ_AND_APPEND, self.conversations)
        self._grant(role, "ResponseCache", ["dynamodb:GetItem", "dynamodb:PutItem"], self.response_cache)
        self._grant(role, "UsageCounters", ["dynamodb:UpdateItem", "dynamodb:Query"], self.usage)
        self._grant_prompts(role)
        self._grant_curated(role)
        self._grant_key(role)

    def grant_documents(self, role: iam.IRole) -> None:
        """The API (upload, list, status, delete) and the ingest Lambda (status and its reason): the documents
        table's item actions, nothing in bulk."""
        self._grant(role, "Documents", _DOCUMENTS, self.documents)
        self._grant_key(role)

    def grant_documents_read(self, role: iam.IRole) -> None:
        """The worker's retrieval: read the cited documents' records (names, deleted or not), never write."""
        self._grant(role, "Documents", ["dynamodb:GetItem", "dynamodb:Query"], self.documents)
        self._grant_key(role)

    def _grant_prompts(self, role: iam.IRole) -> None:
        """The active prompt: one GetItem of this environment's pointer. Versions are written by operators only."""
        if self.prompts is not None:
            self._grant(role, "PromptCatalog", ["dynamodb:GetItem"], self.prompts)

    def _grant_curated(self, role: iam.IRole) -> None:
        """The curated answers, read whole (a bounded Scan: few entries, compared by embedding). Written by
        operators only (make curate)."""
        if self.curated is not None:
            self._grant(role, "CuratedAnswers", ["dynamodb:Scan"], self.curated)

    def grant_curate_job(self, role: iam.IRole) -> None:
        """The scheduled curate job: read the questions and answers, write answers; the active prompt's pointer."""
        if self.curated is not None:
            self._grant(role, "CuratedAnswers", ["dynamodb:Scan"], self.curated)
            self._grant(role, "WriteCuratedAnswers", ["dynamodb:PutItem"], self.curated)
        self._grant_prompts(role)
        self._grant_key(role)

    @staticmethod
    def _grant(role: iam.IRole, sid: str, actions: list[str], table: dynamodb.ITableV2) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=[table.table_arn]))

    def _grant_key(self, role: iam.IRole) -> None:
        """DynamoDB decrypts the table key with the caller's permission (reads and writes alike): Decrypt
        (and DescribeKey), only when DynamoDB in this region asks; no Encrypt or GenerateDataKey."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TableKey",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
