"""The application database: assistants, conversations and turns, keys, jobs, feedback.

SQLAlchemy 2 models with Alembic migrations; a SQLite file in the data dir by default and
PostgreSQL by URL. ``Database.open(url)`` brings the schema up to date before first use.
"""

from assistant.database.analytics_models import (
    QuestionClusteringRow,
    TurnInsightRow,
    TurnPageRow,
)
from assistant.database.engine import Database, database_url
from assistant.database.models import (
    ApiKeyRow,
    AssistantRow,
    Base,
    ConversationRow,
    FeedbackRow,
    JobRow,
    ServerSecretRow,
    TurnRow,
)
from assistant.database.rollup_models import (
    AnalyticsHourRow,
    HourClusterRow,
    HourPageRow,
    HourTotalsRow,
)
from assistant.database.slack_models import SlackEventRow, SlackThreadRow

__all__ = [
    "AnalyticsHourRow",
    "ApiKeyRow",
    "AssistantRow",
    "Base",
    "ConversationRow",
    "Database",
    "FeedbackRow",
    "HourClusterRow",
    "HourPageRow",
    "HourTotalsRow",
    "JobRow",
    "QuestionClusteringRow",
    "ServerSecretRow",
    "SlackEventRow",
    "SlackThreadRow",
    "TurnInsightRow",
    "TurnPageRow",
    "TurnRow",
    "database_url",
]
