"""Block Kit identifiers: callback ids, action ids and block ids, in one place."""

NEW_PARTNERSHIP_VIEW = "partnership_new"
NEW_PARTNERSHIP_BUTTON = "partnership_new_open"
CLOSE_CONFIRM = "partnership_close_confirm"
CLOSE_CANCEL = "partnership_close_cancel"

# Input blocks of the new-partnership modal: block id == action id == input field name.
F_NAME = "name"
F_PARTNER_ORG = "partner_org"
F_MEMBERS = "members"
F_OWNERS = "owners"
F_EMAILS = "partner_emails"
F_GOALS = "goals"
F_TIMEZONE = "timezone"
F_PRIVATE = "is_private"

# Check-ins.
CHECKIN_ANSWER = "checkin_answer"  # the Answer button (value: the round's key)
CHECKIN_ANSWER_VIEW = "checkin_answer"
CHECKIN_SETUP_VIEW = "checkin_setup"
CHECKIN_QUESTIONS_VIEW = "checkin_questions"
# "Log as issue" beside a blocker or need answer in a check-in's summary (value: "<CheckinAnswer.id>:<question
# index>"); the issue log opens its form prefilled with that answer and its author as reporter.
ISSUE_FROM_ANSWER = "issue_from_answer"
F_DAYS = "weekdays"
F_TIME = "local_time"
F_QUESTIONS = "questions"
F_WINDOW = "window"
F_REMINDER = "reminder"
F_PARTICIPANT_MODE = "participant_mode"
F_PARTICIPANTS = "participants"

# Pulse surveys.
PULSE_TAKE = "pulse_take"  # the Take the survey button (value: the round's key)
PULSE_SURVEY_VIEW = "pulse_survey"
PULSE_SETUP_VIEW = "pulse_setup"
F_PULSE_CADENCE = "pulse_cadence"
F_PULSE_EVERY = "pulse_every_weeks"
F_PULSE_NTH = "pulse_nth"
F_PULSE_WEEKDAY = "pulse_weekday"
F_PULSE_OPEN_DAYS = "pulse_open_days"
F_PULSE_ANONYMOUS = "pulse_anonymous"
F_PULSE_AUDIENCE = "pulse_audience"
# Milestones and kudos. Buttons carry a milestone's id as their value.
MILESTONE_DONE = "milestone_done"
MILESTONE_RESCHEDULE = "milestone_reschedule"
MILESTONE_EDIT = "milestone_edit"
MILESTONE_CANCEL = "milestone_cancel"
MILESTONE_ADD_VIEW = "milestone_add"
MILESTONE_EDIT_VIEW = "milestone_edit"
MILESTONE_DONE_VIEW = "milestone_done"
MILESTONE_RESCHEDULE_VIEW = "milestone_reschedule"
F_TITLE = "title"
F_DONE_MEANS = "done_means"
F_DUE = "due_date"
F_MILESTONE_OWNERS = "milestone_owners"
F_CELEBRATE = "celebrate"
F_CONTRIBUTORS = "contributors"
F_NOTE = "note"
# Polls.
POLL_VIEW = "poll_new"
POLL_ANSWER_VIEW = "poll_answer_form"
POLL_VOTE = "poll_vote"  # a vote button's action id is POLL_VOTE + "_<option>" (value: "<poll id>:<option>")
POLL_ANSWER = "poll_answer"  # open text: the Answer button (value: the poll id)
POLL_CLOSE = "poll_close"  # the Close poll button (value: the poll id)
POLL_EXPORT = "poll_export"  # the Export CSV button (value: the poll id)
POLL_OPEN = "poll_open"  # a reminder's link to the poll (a URL button; its click needs only an ack)
F_POLL_QUESTION = "question"
F_POLL_KIND = "kind"
F_POLL_OPTIONS = "options"
F_POLL_MAX_PICKS = "max_picks"
F_POLL_ANONYMOUS = "anonymous"
F_POLL_RESULTS = "results"
F_POLL_CLOSES = "closes"
F_POLL_AUDIENCE = "audience"
F_POLL_CHOSEN = "chosen"
F_POLL_REMINDER = "reminder"
F_POLL_ANSWER = "answer"
# The issue log. Card buttons carry the issue's id as their value.
ISSUE_ACK = "issue_ack"
ISSUE_ASSIGN = "issue_assign"
ISSUE_WAIT = "issue_wait"
ISSUE_RESUME = "issue_resume"
ISSUE_RESOLVE = "issue_resolve"
ISSUE_REOPEN = "issue_reopen"
ISSUE_ESCALATE = "issue_escalate"
ISSUE_EDIT = "issue_edit"
ISSUE_SLA_EDIT = "issue_sla_edit"  # the SLA listing's "Change targets" button (owners)
ISSUE_SHORTCUT = "log_issue"  # the message shortcut "Log as partnership issue" (manifest.yml)
ISSUE_VIEW = "issue_new"
ISSUE_ASSIGN_VIEW = "issue_assign_form"
ISSUE_RESOLVE_VIEW = "issue_resolve_form"
ISSUE_ESCALATE_VIEW = "issue_escalate_form"
ISSUE_EDIT_VIEW = "issue_edit_form"
ISSUE_SLA_VIEW = "issue_sla_form"
F_ISSUE_TITLE = "issue_title"
F_ISSUE_DESCRIPTION = "issue_description"
F_ISSUE_SEVERITY = "issue_severity"
F_ISSUE_OWNER_OURS = "issue_owner_ours"
F_ISSUE_OWNER_PARTNER = "issue_owner_partner"
F_ISSUE_DUE = "issue_due"
F_ISSUE_DUE_CLEAR = "issue_due_clear"  # the Edit form's "Remove the due date" checkbox
F_ISSUE_NOTE = "issue_note"
F_SLA_ACK = "sla_ack"  # + "_<severity>"
F_SLA_RESOLVE = "sla_resolve"  # + "_<severity>"
F_SLA_BUSINESS = "sla_business_hours"
F_SLA_DAYS = "sla_days"
F_SLA_START = "sla_start"
F_SLA_END = "sla_end"
