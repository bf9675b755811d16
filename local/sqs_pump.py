"""Delivers SQS messages to a Lambda handler the way an event source mapping does, locally.

Receives batches (up to `batch_size`), builds the SQS event Lambda receives (ApproximateReceiveCount
included), calls the handler with up to `max_concurrency` batches in flight, deletes the records it
did not report in `batchItemFailures`, and leaves the failed ones to reappear after the queue's
visibility timeout, so the queue's own redrive policy moves poison messages to the DLQ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.lambda_context import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class PollingThread:
    """One daemon thread that polls until stopped (the pump, local/knowledge.py's S3 notifier); `errors` holds
    what the polls raised."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def _start_thread(self, loop: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


class SqsPump(PollingThread):
    def __init__(
        self,
        *,
        client: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        batch_size: int = 1,
        max_concurrency: int = 2,
        timeout_s: float = 120.0,
    ) -> None:
        super().__init__("sqs-pump")
        self._client = client
        self._url = queue_url
        self._arn = queue_arn
        self._handler = handler
        self._batch_size = batch_size
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="pump")
        self._slots = threading.Semaphore(max_concurrency)
        self._timeout_s = timeout_s
        self.invocations = 0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Batches handed to the handler and not finished (their messages not yet deleted or left to reappear)."""
        with self._in_flight_lock:
            return self._in_flight

    def poll_once(self) -> int:
        """Receive one batch and hand it to a free slot; the number of records received."""
        if not self._slots.acquire(timeout=0.5):
            return 0
        response = self._client.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            self._slots.release()
            return 0
        with self._in_flight_lock:
            self._in_flight += 1
        self._pool.submit(self._deliver, messages)
        return len(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        try:
            event = {"Records": [self._record(m) for m in messages]}
            context = LocalContext(function_name="worker", timeout_s=self._timeout_s)
            self.invocations += 1
            try:
                result = self._handler(event, context) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Exception as error:
                self.errors.append(error)
                failed = {m["MessageId"] for m in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            for message in done:
                self._client.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
            self._slots.release()

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": message.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                "SentTimestamp": message.get("Attributes", {}).get("SentTimestamp", "0"),
                "SenderId": "local",
                "ApproximateFirstReceiveTimestamp": message.get("Attributes", {}).get(
                    "ApproximateFirstReceiveTimestamp", "0"
                ),
            },
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._arn.split(":")[3] if self._arn.count(":") >= 5 else "us-east-1",
        }

    def run_until(self, condition: Callable[[], bool], *, timeout_s: float, idle_sleep_s: float = 0.05) -> bool:
        """Pump until `condition()` holds (True) or the time runs out (False)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if condition():
                return True
            if self.poll_once() == 0:
                time.sleep(idle_sleep_s)
        return condition()

    def start(self) -> SqsPump:
        def loop() -> None:
            while not self._stop.is_set():
                if self.poll_once() == 0:
                    self._stop.wait(0.2)

        self._start_thread(loop)
        return self

    def stop(self) -> None:
        super().stop()
        self._pool.shutdown(wait=True)
