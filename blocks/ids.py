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
