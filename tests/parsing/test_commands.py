"""Reply commands and snooze times: (input, expected) pairs, with time as an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailmentor.errors import DurationError
from mailmentor.parsing.commands import (
    Command,
    CommandName,
    parse_command,
    parse_commands,
    resolve_snooze,
)

C = CommandName


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("acted", Command(C.ACTED)),
        ("Done!", Command(C.ACTED)),
        ("done.", Command(C.ACTED)),
        ("*acted*", Command(C.ACTED)),
        ('"Done"', Command(C.ACTED)),
        ("  DONE  \n\nthanks", Command(C.ACTED)),
        ("\n\n\nreported", Command(C.REPORTED)),
        ("Reported back", Command(C.REPORTED)),
        ("advised", Command(C.ADVISED)),
        ("gave back thanks for the intro", Command(C.GAVE_BACK, "thanks for the intro")),
        ("Gave back: Thanks for the intro!", Command(C.GAVE_BACK, "Thanks for the intro!")),
        ("gaveback", Command(C.GAVE_BACK)),
        ("gave-back sent him the paper", Command(C.GAVE_BACK, "sent him the paper")),
        ("gave_back coffee", Command(C.GAVE_BACK, "coffee")),
        ("snooze 3d", Command(C.SNOOZE, "3d")),
        ("Snooze 3D.", Command(C.SNOOZE, "3d")),
        ("snooze until friday", Command(C.SNOOZE, "until friday")),
        ("snooze: 2w", Command(C.SNOOZE, "2w")),
        ("snooze", Command(C.SNOOZE)),
        ("stop", Command(C.STOP)),
        ("STOP!!!", Command(C.STOP)),
        ("note called him, he was glad", Command(C.NOTE, "called him, he was glad")),
        ("Note: met at the conference", Command(C.NOTE, "met at the conference")),
        ("help", Command(C.HELP)),
        ("help?", Command(C.HELP)),
        ("?", Command(C.HELP)),
        ("reopen", Command(C.REOPEN)),
        # Prose that starts with a command word is no command (never STOP): a note.
        ("stop by my office tomorrow", Command(C.NOTE, "stop by my office tomorrow")),
        ("notebook arrived", Command(C.UNKNOWN, "notebook arrived")),
        ("snoozefest", Command(C.UNKNOWN, "snoozefest")),
        ("What does this mean?", Command(C.UNKNOWN, "What does this mean?")),
        ("done\n\nOn Mon, Jan 5, 2026 at 9:14 AM m <m@x.org> wrote:\n> stop", Command(C.ACTED)),
        ("", None),
        ("   \n \n", None),
        ("> acted\n> reminder", None),  # quoted text is never read
        ("\n> acted\n\nstop", Command(C.STOP)),  # bottom-posted: the new line counts
        ("-- \nsig only", None),
        ("Sent from my iPhone", None),
        ("On Mon, Jan 5, 2026 at 9:14 AM mailmentor <m@x.org> wrote:\n> acted", None),
    ],
)  # fmt: skip
def test_parse_command(reply: str, expected: Command | None) -> None:
    assert parse_command(reply) == expected


# What people actually write (issue 11): greetings and thanks around the command, notes after
# it, quotes and signatures below it, durations in words; one table per language, then what is
# no command. (reply, command, note or argument)

# What mail clients put below a reply. Each quotes a "stop", so reading it would show.
GMAIL = (
    "\n\nOn Mon, Jan 5, 2026 at 9:14 AM mailmentor <mentor+r-abc-xyz@example.com> wrote:\n"
    "> Act on Alan's advice\n>\n> Reply with one line: stop\n"
)
APPLE = "\n\n> On 5 Jan 2026, at 09:14, mailmentor <mentor@example.com> wrote:\n>\n> stop\n"
OUTLOOK = (
    "\n\n________________________________\nFrom: mailmentor <mentor@example.com>\n"
    "Sent: Monday, January 5, 2026 9:14 AM\nTo: Ada <ada@example.com>\n"
    "Subject: [mailmentor] Alan: Pricing page\n\nReply with one line: stop\n"
)
ORIGINAL = (
    "\n\n-----Original Message-----\nFrom: mailmentor <mentor@example.com>\n"
    "Sent: Monday, January 5, 2026 9:14 AM\nTo: ada@example.com\nSubject: Pricing\n\nstop\n"
)
SIGNATURE = "\n\n-- \nAda Lovelace\nAnalytical Engines Ltd\nNote: this mail is confidential."
GERMAN_QUOTE = (
    "\n\nAm Mo., 5. Jan. 2026 um 09:14 Uhr schrieb mailmentor <mentor@example.com>:\n> stop\n"
)
GERMAN_OUTLOOK = (
    "\n\nVon: mailmentor <mentor@example.com>\nGesendet: Montag, 5. Januar 2026 09:14\n"
    "An: Ada <ada@example.com>\nBetreff: Preise\n\nstop\n"
)
FRENCH_QUOTE = (
    "\n\nLe lun. 5 janv. 2026 à 09:14, mailmentor <mentor@example.com> a écrit :\n> stop\n"
)
FRENCH_OUTLOOK = (
    "\n\nDe : mailmentor <mentor@example.com>\nEnvoyé : lundi 5 janvier 2026 09:14\n"
    "À : Ada <ada@example.com>\nObjet : Prix\n\nstop\n"
)
SPANISH_QUOTE = (
    "\n\nEl lun, 5 ene 2026 a las 9:14, mailmentor (<mentor@example.com>) escribió:\n> stop\n"
)
SPANISH_OUTLOOK = (
    "\n\nDe: mailmentor <mentor@example.com>\nEnviado: lunes, 5 de enero de 2026 9:14\n"
    "Para: Ada <ada@example.com>\nAsunto: Precios\n\nstop\n"
)

ENGLISH: list[tuple[str, CommandName, str]] = [
    # acted, with notes after the command word
    ("Done - signed up for a course", C.ACTED, "signed up for a course"),
    ("Done, I signed up.", C.ACTED, "I signed up."),
    ("acted: signed up for the course", C.ACTED, "signed up for the course"),
    ("acted on your advice: cut the plans to three", C.ACTED, "cut the plans to three"),
    ("Done, that worked!", C.ACTED, "that worked!"),
    ("done, it went well", C.ACTED, "it went well"),
    ("DONE. Took the course.", C.ACTED, "Took the course."),
    ("done — booked the flight", C.ACTED, "booked the flight"),
    ("done: booked the flight", C.ACTED, "booked the flight"),
    ("done – booked the flight", C.ACTED, "booked the flight"),
    ("done; booked the flight", C.ACTED, "booked the flight"),
    ("done... booked the flight", C.ACTED, "booked the flight"),
    ("Done-signed up", C.ACTED, "signed up"),
    ("Done! Booked the course.", C.ACTED, "Booked the course."),
    ("done!! booked the course", C.ACTED, "booked the course"),
    ("Done (signed up for the course)", C.ACTED, "signed up for the course"),
    ("done [booked it]", C.ACTED, "booked it"),
    ("Done: (booked it)", C.ACTED, "booked it"),
    ("done - (a) the course and (b) the book", C.ACTED, "(a) the course and (b) the book"),
    ("Finished - the draft is out", C.ACTED, "the draft is out"),
    ("did it - called the bank", C.ACTED, "called the bank"),
    ("Tried it - worked great", C.ACTED, "worked great"),
    ("completed: moved to annual plans", C.ACTED, "moved to annual plans"),
    ("I did it! Signed up today.", C.ACTED, "Signed up today."),
    ("I've done it - the talk is booked", C.ACTED, "the talk is booked"),
    # acted, bare or with greetings, thanks, fillers, emoji and smileys
    ("Thanks! done", C.ACTED, ""),
    ("thanks, done", C.ACTED, ""),
    ("Thank you so much - done!", C.ACTED, ""),
    ("Hi — acted on it", C.ACTED, ""),
    ("Hi mailmentor, acted on it.", C.ACTED, ""),
    ("Hi Alan, done", C.ACTED, ""),
    ("Good morning Alan! Done.", C.ACTED, ""),
    ("Hey there! Done.", C.ACTED, ""),
    ("Good morning! Done", C.ACTED, ""),
    ("Morning - done", C.ACTED, ""),
    ("Thanks for the reminder! Done.", C.ACTED, ""),
    ("thank you for the nudge, done", C.ACTED, ""),
    ("Great, thanks - done", C.ACTED, ""),
    ("Yay, done!", C.ACTED, ""),
    ("Yes! Done", C.ACTED, ""),
    ("yep done", C.ACTED, ""),
    ("Yup, done.", C.ACTED, ""),
    ("Sure - done", C.ACTED, ""),
    ("Ok, done", C.ACTED, ""),
    ("OK done!", C.ACTED, ""),
    ("Okay. Done.", C.ACTED, ""),
    ("Yes, done.", C.ACTED, ""),
    ("great, did it", C.ACTED, ""),
    ("acted on the advice", C.ACTED, ""),
    ("acted on his advice", C.ACTED, ""),
    ("done already", C.ACTED, ""),
    ("done already, thanks", C.ACTED, ""),
    ("Done it!", C.ACTED, ""),
    ("done, thanks", C.ACTED, ""),
    ("Done. Thanks!", C.ACTED, ""),
    ("done - thanks for the reminder!", C.ACTED, ""),
    ("done today", C.ACTED, ""),
    ("done yesterday", C.ACTED, ""),
    ("Done this morning.", C.ACTED, ""),
    ("finally done!", C.ACTED, ""),
    ("Done, finally", C.ACTED, ""),
    ("done too", C.ACTED, ""),
    ("done as well", C.ACTED, ""),
    ("all done", C.ACTED, ""),
    ("All done!", C.ACTED, ""),
    ("Done and dusted", C.ACTED, ""),
    ("finished", C.ACTED, ""),
    ("Finished it.", C.ACTED, ""),
    ("completed", C.ACTED, ""),
    ("did it", C.ACTED, ""),
    ("Did that.", C.ACTED, ""),
    ("I did it", C.ACTED, ""),
    ("I have done it.", C.ACTED, ""),
    ("tried it", C.ACTED, ""),
    ("Done 👍", C.ACTED, ""),
    ("Done ✅", C.ACTED, ""),
    ("✅ done", C.ACTED, ""),
    ("done 🎉🎉", C.ACTED, ""),
    ("Done 👍🏽", C.ACTED, ""),
    ("done :)", C.ACTED, ""),
    ("Done :-)", C.ACTED, ""),
    ("done :D", C.ACTED, ""),
    ("done ;)", C.ACTED, ""),
    ("Done!!!", C.ACTED, ""),
    ("done?!", C.ACTED, ""),
    ("DONE", C.ACTED, ""),
    ("dOnE", C.ACTED, ""),
    ("_done_", C.ACTED, ""),
    ("**done**", C.ACTED, ""),
    ("`done`", C.ACTED, ""),
    ("'done'", C.ACTED, ""),
    ("“Done”", C.ACTED, ""),
    ("   done   ", C.ACTED, ""),
    ("\tDone\t", C.ACTED, ""),
    ("Hello there!\nDone.", C.ACTED, ""),
    ("Hi,\n\ndone - signed up\n\nThanks,\nAda", C.ACTED, "signed up"),
    ("Hi Ada here,\ndone", C.ACTED, ""),
    ("Thanks!\n\nDone.\n\nBest,\nAda", C.ACTED, ""),
    # acted, with what clients put below
    ("done" + GMAIL, C.ACTED, ""),
    ("Done - booked it" + GMAIL, C.ACTED, "booked it"),
    ("done" + APPLE, C.ACTED, ""),
    ("Done!" + OUTLOOK, C.ACTED, ""),
    ("done" + ORIGINAL, C.ACTED, ""),
    ("Done" + SIGNATURE, C.ACTED, ""),
    ("Done - signed up" + SIGNATURE + GMAIL, C.ACTED, "signed up"),
    ("done\n\nSent from my iPhone", C.ACTED, ""),
    ("Done\n\nSent from my Galaxy", C.ACTED, ""),
    ("done\n\nGet Outlook for iOS" + OUTLOOK, C.ACTED, ""),
    ("Done\n\nSent from Yahoo Mail for iPhone", C.ACTED, ""),
    ("done\n\nBest regards,\nAda Lovelace\nNote: this mail is confidential", C.ACTED, ""),
    ("done\nCheers\nAda\nstop by anytime", C.ACTED, ""),
    ("done\r\n\r\n> stop\r\n", C.ACTED, ""),
    ("Done\n>stop", C.ACTED, ""),
    # advised
    ("advised", C.ADVISED, ""),
    ("got advice - three plans, annual first", C.ADVISED, "three plans, annual first"),
    ("got the advice", C.ADVISED, ""),
    ("He answered!", C.ADVISED, ""),
    ("she replied - says to wait a month", C.ADVISED, "says to wait a month"),
    ("They answered yesterday", C.ADVISED, ""),
    ("answered: start with the annual plan", C.ADVISED, "start with the annual plan"),
    ("got an answer", C.ADVISED, ""),
    ("Got a reply today.", C.ADVISED, ""),
    ("Thanks - he wrote back", C.ADVISED, ""),
    ("advised" + GMAIL, C.ADVISED, ""),
    # reported
    ("reported", C.REPORTED, ""),
    ("Reported back - told him it worked", C.REPORTED, "told him it worked"),
    ("thanks, reported back!", C.REPORTED, ""),
    ("reported: he was happy to hear it", C.REPORTED, "he was happy to hear it"),
    ("Reported back to him", C.REPORTED, ""),
    ("reported back to my mentor.", C.REPORTED, ""),
    ("Reported back to her, she was glad", C.REPORTED, "she was glad"),
    ("told him", C.REPORTED, ""),
    ("Told her how it went", C.REPORTED, ""),
    ("told them about it - they loved it", C.REPORTED, "they loved it"),
    ("let him know", C.REPORTED, ""),
    ("I reported back", C.REPORTED, ""),
    ("report sent", C.REPORTED, ""),
    ("Wrote back to him today", C.REPORTED, ""),
    ("reported 👍", C.REPORTED, ""),
    ("reported" + OUTLOOK, C.REPORTED, ""),
    ("Reported back.\n\nSent from my iPhone" + GMAIL, C.REPORTED, ""),
    # gave back
    ("gave back: sent him the paper", C.GAVE_BACK, "sent him the paper"),
    ("Thanks! gave back coffee", C.GAVE_BACK, "coffee"),
    ("gave back", C.GAVE_BACK, ""),
    ("Gave back - introduced him to Grace", C.GAVE_BACK, "introduced him to Grace"),
    ("Gave back! Took her to lunch", C.GAVE_BACK, "Took her to lunch"),
    ("gave back (a book on pricing)", C.GAVE_BACK, "a book on pricing"),
    ("gave something back: a thank-you card", C.GAVE_BACK, "a thank-you card"),
    ("Thanked him - sent flowers", C.GAVE_BACK, "sent flowers"),
    ("thanked her", C.GAVE_BACK, ""),
    ("gave back thanks for the intro", C.GAVE_BACK, "thanks for the intro"),
    ("gave back" + GMAIL, C.GAVE_BACK, ""),
    # snooze, durations in words
    ("snooze a week", C.SNOOZE, "a week"),
    ("snooze 2 weeks please", C.SNOOZE, "2 weeks please"),
    ("Snooze ten days.", C.SNOOZE, "ten days"),
    ("snooze until next monday", C.SNOOZE, "until next monday"),
    ("snooze till the end of the month", C.SNOOZE, "till the end of the month"),
    ("snooze end of month", C.SNOOZE, "end of month"),
    ("thanks — snooze 3d", C.SNOOZE, "3d"),
    ("snooze 3 days", C.SNOOZE, "3 days"),
    ("Snooze 1W", C.SNOOZE, "1w"),
    ("snooze for a week", C.SNOOZE, "for a week"),
    ("Snooze for 2 weeks, please!", C.SNOOZE, "for 2 weeks, please"),
    ("snooze till monday", C.SNOOZE, "till monday"),
    ("Snooze until next Monday.", C.SNOOZE, "until next monday"),
    ("snooze: tomorrow", C.SNOOZE, "tomorrow"),
    ("snooze until Dec 1", C.SNOOZE, "until dec 1"),
    ("snooze until dec. 1", C.SNOOZE, "until dec. 1"),
    ("snooze until 1 December", C.SNOOZE, "until 1 december"),
    ("snooze 2026-12-01", C.SNOOZE, "2026-12-01"),
    ("snooze a couple of days", C.SNOOZE, "a couple of days"),
    ("snooze a few weeks", C.SNOOZE, "a few weeks"),
    ("snooze one month", C.SNOOZE, "one month"),
    ("snooze 36h", C.SNOOZE, "36h"),
    ("snooze next week", C.SNOOZE, "next week"),
    ("snooze until end of week", C.SNOOZE, "until end of week"),
    ("snooze 2w - travelling until then", C.SNOOZE, "2w"),
    ("snooze 2w (on holiday)", C.SNOOZE, "2w"),
    ("snooze 2w; away", C.SNOOZE, "2w"),
    ("Snooze 3d. Busy week.", C.SNOOZE, "3d"),
    ("snooze this for a week", C.SNOOZE, "for a week"),
    ("Please snooze 3d", C.SNOOZE, "3d"),
    ("pls snooze a week", C.SNOOZE, "a week"),
    ("snooze 😴 3d", C.SNOOZE, "3d"),
    ("snoozed until friday", C.SNOOZE, "until friday"),
    ("postpone 1w", C.SNOOZE, "1w"),
    ("snooze", C.SNOOZE, ""),
    ("remind me in a week", C.SNOOZE, "in a week"),
    ("Remind me on friday please", C.SNOOZE, "on friday please"),
    ("remind me next week", C.SNOOZE, "next week"),
    ("Remind me tomorrow.", C.SNOOZE, "tomorrow"),
    ("remind me in 3 days", C.SNOOZE, "in 3 days"),
    ("please remind me next month", C.SNOOZE, "next month"),
    ("Remind me at the end of the month", C.SNOOZE, "at the end of the month"),
    ("remind me later", C.SNOOZE, ""),
    ("Not yet - remind me next week", C.SNOOZE, "next week"),
    ("not yet, snooze 3d", C.SNOOZE, "3d"),
    ("snooze 3d" + GMAIL, C.SNOOZE, "3d"),
    ("snooze a week\n\nSent from my iPhone", C.SNOOZE, "a week"),
    # stop
    ("stop", C.STOP, ""),
    ("Stop, please.", C.STOP, ""),
    ("stop - I found another way", C.STOP, "I found another way"),
    ("thanks, stop", C.STOP, ""),
    ("Please stop", C.STOP, ""),
    ("stop it", C.STOP, ""),
    ("Stop this one", C.STOP, ""),
    ("stop reminding me", C.STOP, ""),
    ("Stop reminders, please", C.STOP, ""),
    ("no more reminders", C.STOP, ""),
    ("drop it", C.STOP, ""),
    ("drop - not relevant anymore", C.STOP, "not relevant anymore"),
    ("STOP!!!", C.STOP, ""),
    ("stop 🛑", C.STOP, ""),
    ("stop (he moved on)", C.STOP, "he moved on"),
    ("stop" + OUTLOOK, C.STOP, ""),
    # note
    ("note: called him on Monday", C.NOTE, "called him on Monday"),
    ("Note - he is travelling until May", C.NOTE, "he is travelling until May"),
    ("note he moved to Berlin", C.NOTE, "he moved to Berlin"),
    ("NB: he changed jobs", C.NOTE, "he changed jobs"),
    ("FYI he changed jobs", C.NOTE, "he changed jobs"),
    ("note: (met at the conference)", C.NOTE, "met at the conference"),
    ("Thanks! Note: he prefers phone calls", C.NOTE, "he prefers phone calls"),
    ("note: call him in spring" + GMAIL, C.NOTE, "call him in spring"),
    # help and reopen
    ("help", C.HELP, ""),
    ("Hi, help?", C.HELP, ""),
    ("Help!", C.HELP, ""),
    ("??", C.HELP, ""),
    ("commands?", C.HELP, ""),
    ("help" + GMAIL, C.HELP, ""),
    ("reopen", C.REOPEN, ""),
    ("Reopen please", C.REOPEN, ""),
    ("reopen it", C.REOPEN, ""),
    ("keep it", C.REOPEN, ""),
    ("Keep it!", C.REOPEN, ""),
    ("resume", C.REOPEN, ""),
    ("reopen" + GMAIL, C.REOPEN, ""),
]  # fmt: skip

GERMAN: list[tuple[str, CommandName, str]] = [
    ("erledigt", C.ACTED, ""),
    ("Erledigt", C.ACTED, ""),
    ("Erledigt!", C.ACTED, ""),
    ("erledigt.", C.ACTED, ""),
    ("erledigt – habe mich angemeldet", C.ACTED, "habe mich angemeldet"),
    ("Erledigt, danke!", C.ACTED, ""),
    ("Danke! Erledigt.", C.ACTED, ""),
    ("Danke, erledigt", C.ACTED, ""),
    ("Hallo, erledigt", C.ACTED, ""),
    ("Hallo Alan, erledigt", C.ACTED, ""),
    ("Lieber Alan, erledigt!", C.ACTED, ""),
    ("Guten Morgen! Erledigt.", C.ACTED, ""),
    ("Vielen Dank, erledigt!", C.ACTED, ""),
    ("Danke für die Erinnerung - erledigt", C.ACTED, ""),
    ("Ist erledigt.", C.ACTED, ""),
    ("schon erledigt", C.ACTED, ""),
    ("erledigt - Kurs gebucht", C.ACTED, "Kurs gebucht"),
    ("Erledigt: Kurs gebucht.", C.ACTED, "Kurs gebucht."),
    ("erledigt (Kurs gebucht)", C.ACTED, "Kurs gebucht"),
    ("erledigt 👍", C.ACTED, ""),
    ("gemacht", C.ACTED, ""),
    ("Hab ich gemacht!", C.ACTED, ""),
    ("fertig", C.ACTED, ""),
    ("Fertig: Angebot verschickt", C.ACTED, "Angebot verschickt"),
    ("umgesetzt", C.ACTED, ""),
    ("Super, erledigt", C.ACTED, ""),
    ("Ja, erledigt.", C.ACTED, ""),
    ("Alles klar, erledigt", C.ACTED, ""),
    ("erledigt" + GERMAN_QUOTE, C.ACTED, ""),
    ("Erledigt!" + GERMAN_OUTLOOK, C.ACTED, ""),
    ("erledigt\n\nViele Grüße\nAda\nNotiz: vertraulich", C.ACTED, ""),
    ("erledigt\n\nVon meinem iPhone gesendet", C.ACTED, ""),
    ("Erledigt\n\nLG Ada", C.ACTED, ""),
    ("er hat geantwortet", C.ADVISED, ""),
    ("Hat geantwortet - drei Tarife", C.ADVISED, "drei Tarife"),
    ("geantwortet", C.ADVISED, ""),
    ("Rat bekommen", C.ADVISED, ""),
    ("berichtet", C.REPORTED, ""),
    ("Berichtet – er hat sich gefreut", C.REPORTED, "er hat sich gefreut"),
    ("zurückgemeldet", C.REPORTED, ""),
    ("Danke, berichtet!", C.REPORTED, ""),
    ("berichtet" + GERMAN_QUOTE, C.REPORTED, ""),
    ("zurückgegeben: Kaffee", C.GAVE_BACK, "Kaffee"),
    ("etwas zurückgegeben - ein Buch", C.GAVE_BACK, "ein Buch"),
    ("revanchiert", C.GAVE_BACK, ""),
    ("später: 2w", C.SNOOZE, "2w"),
    ("später 1 Woche", C.SNOOZE, "1 woche"),
    ("Später, in einer Woche", C.SNOOZE, "in einer woche"),
    ("später in 2 Wochen bitte", C.SNOOZE, "in 2 wochen bitte"),
    ("später bis Freitag", C.SNOOZE, "bis freitag"),
    ("später: nächste Woche", C.SNOOZE, "nächste woche"),
    ("Später bis Ende des Monats", C.SNOOZE, "bis ende des monats"),
    ("erinnere mich in 3 tagen", C.SNOOZE, "in 3 tagen"),
    ("Erinnere mich nächste Woche", C.SNOOZE, "nächste woche"),
    ("erinnere mich am Montag", C.SNOOZE, "am montag"),
    ("Bitte erinnere mich morgen", C.SNOOZE, "morgen"),
    ("verschieben 1w", C.SNOOZE, "1w"),
    ("Noch nicht, später 1 Woche", C.SNOOZE, "1 woche"),
    ("später 1 Woche" + GERMAN_OUTLOOK, C.SNOOZE, "1 woche"),
    ("stopp", C.STOP, ""),
    ("Stopp bitte", C.STOP, ""),
    ("aufhören", C.STOP, ""),
    ("Beenden - hat sich erledigt", C.STOP, "hat sich erledigt"),
    ("stop" + GERMAN_QUOTE, C.STOP, ""),
    ("notiz: angerufen", C.NOTE, "angerufen"),
    ("Anmerkung: er ist im Urlaub", C.NOTE, "er ist im Urlaub"),
    ("hilfe", C.HELP, ""),
    ("Hilfe?", C.HELP, ""),
    ("wieder öffnen", C.REOPEN, ""),
    ("fortsetzen", C.REOPEN, ""),
]  # fmt: skip

FRENCH: list[tuple[str, CommandName, str]] = [
    ("fait", C.ACTED, ""),
    ("Fait !", C.ACTED, ""),
    ("fait.", C.ACTED, ""),
    ("Merci, fait !", C.ACTED, ""),
    ("C'est fait", C.ACTED, ""),
    ("c’est fait !", C.ACTED, ""),
    ("Bonjour, c'est fait.", C.ACTED, ""),
    ("Bonjour Alan, fait", C.ACTED, ""),
    ("Merci beaucoup, c'est fait", C.ACTED, ""),
    ("Merci pour le rappel - c'est fait", C.ACTED, ""),
    ("Voilà, c'est fait !", C.ACTED, ""),
    ("Parfait, fait", C.ACTED, ""),
    ("Oui, fait.", C.ACTED, ""),
    ("Salut ! Fait", C.ACTED, ""),
    ("fait : inscrit au cours", C.ACTED, "inscrit au cours"),
    ("C'est fait - je me suis inscrit", C.ACTED, "je me suis inscrit"),
    ("terminé : cours réservé", C.ACTED, "cours réservé"),
    ("Terminé !", C.ACTED, ""),
    ("Termine\u0301 !", C.ACTED, ""),  # é decomposed, as some clients write it
    ("fini", C.ACTED, ""),
    ("fait (cours réservé)", C.ACTED, "cours réservé"),
    ("fait 👍", C.ACTED, ""),
    ("Fait, merci", C.ACTED, ""),
    ("fait" + FRENCH_QUOTE, C.ACTED, ""),
    ("Fait !" + FRENCH_OUTLOOK, C.ACTED, ""),
    ("c'est fait\n\nEnvoyé de mon iPhone", C.ACTED, ""),
    ("Fait\n\nCordialement,\nAda\nRemarque : confidentiel", C.ACTED, ""),
    ("conseillé", C.ADVISED, ""),
    ("Il a répondu", C.ADVISED, ""),
    ("elle a répondu : trois offres", C.ADVISED, "trois offres"),
    ("rapporté", C.REPORTED, ""),
    ("Informé, merci", C.REPORTED, ""),
    ("rapporté - il était content", C.REPORTED, "il était content"),
    ("rapporté" + FRENCH_QUOTE, C.REPORTED, ""),
    ("remercié : un livre", C.GAVE_BACK, "un livre"),
    ("rendu la pareille", C.GAVE_BACK, ""),
    ("plus tard", C.SNOOZE, ""),
    ("plus tard 1w", C.SNOOZE, "1w"),
    ("Plus tard : dans 2 semaines", C.SNOOZE, "dans 2 semaines"),
    ("plus tard, la semaine prochaine", C.SNOOZE, "la semaine prochaine"),
    ("plus tard svp", C.SNOOZE, "svp"),
    ("rappelle-moi dans 2w", C.SNOOZE, "dans 2w"),
    ("Rappelle-moi dans 2 semaines", C.SNOOZE, "dans 2 semaines"),
    ("rappelez-moi dans une semaine", C.SNOOZE, "dans une semaine"),
    ("Rappelle-moi lundi", C.SNOOZE, "lundi"),
    ("rappelle-moi demain", C.SNOOZE, "demain"),
    ("rappelle-moi lundi prochain", C.SNOOZE, "lundi prochain"),
    ("Rappelle-moi à la fin du mois", C.SNOOZE, "à la fin du mois"),
    ("reporter à vendredi", C.SNOOZE, "à vendredi"),
    ("Pas encore - rappelle-moi dans 3 jours", C.SNOOZE, "dans 3 jours"),
    ("plus tard 1w" + FRENCH_OUTLOOK, C.SNOOZE, "1w"),
    ("arrête", C.STOP, ""),
    ("Arrêter, merci", C.STOP, ""),
    ("arrêtez svp", C.STOP, ""),
    ("stop" + FRENCH_QUOTE, C.STOP, ""),
    ("note : il déménage", C.NOTE, "il déménage"),
    ("remarque : il préfère le téléphone", C.NOTE, "il préfère le téléphone"),
    ("aide", C.HELP, ""),
    ("Aide ?", C.HELP, ""),
    ("rouvrir", C.REOPEN, ""),
    ("reprendre", C.REOPEN, ""),
]  # fmt: skip

SPANISH: list[tuple[str, CommandName, str]] = [
    ("hecho", C.ACTED, ""),
    ("¡Hecho!", C.ACTED, ""),
    ("¡Listo!", C.ACTED, ""),
    ("listo.", C.ACTED, ""),
    ("Listo", C.ACTED, ""),
    ("Gracias, hecho", C.ACTED, ""),
    ("¡Gracias! Hecho", C.ACTED, ""),
    ("Gracias, ¡hecho!", C.ACTED, ""),
    ("Muchas gracias, listo", C.ACTED, ""),
    ("Hola, listo", C.ACTED, ""),
    ("Hola Alan, hecho", C.ACTED, ""),
    ("Buenos días, hecho.", C.ACTED, ""),
    ("Vale, hecho", C.ACTED, ""),
    ("Sí, hecho", C.ACTED, ""),
    ("Perfecto, ¡listo!", C.ACTED, ""),
    ("Ya está", C.ACTED, ""),
    ("ya está hecho", C.ACTED, ""),
    ("Ya lo hice", C.ACTED, ""),
    ("terminado", C.ACTED, ""),
    ("Listo, gracias", C.ACTED, ""),
    ("listo - curso reservado", C.ACTED, "curso reservado"),
    ("Hecho: me inscribí al curso", C.ACTED, "me inscribí al curso"),
    ("hecho (curso reservado)", C.ACTED, "curso reservado"),
    ("¡Listo! 🎉", C.ACTED, ""),
    ("hecho" + SPANISH_QUOTE, C.ACTED, ""),
    ("¡Listo!" + SPANISH_OUTLOOK, C.ACTED, ""),
    ("hecho\n\nEnviado desde mi iPhone", C.ACTED, ""),
    ("Hecho\n\nSaludos,\nAda\nNota: confidencial", C.ACTED, ""),
    ("aconsejado", C.ADVISED, ""),
    ("Me respondió - tres planes", C.ADVISED, "tres planes"),
    ("respondió", C.ADVISED, ""),
    ("informado", C.REPORTED, ""),
    ("Le conté - le encantó", C.REPORTED, "le encantó"),
    ("le informé", C.REPORTED, ""),
    ("informado" + SPANISH_QUOTE, C.REPORTED, ""),
    ("devuelto: un libro", C.GAVE_BACK, "un libro"),
    ("Le agradecí - un café", C.GAVE_BACK, "un café"),
    ("más tarde 3d", C.SNOOZE, "3d"),
    ("mas tarde 1w", C.SNOOZE, "1w"),
    ("Más tarde: en 2 semanas", C.SNOOZE, "en 2 semanas"),
    ("más tarde, la próxima semana", C.SNOOZE, "la próxima semana"),
    ("recuérdame en una semana", C.SNOOZE, "en una semana"),
    ("Recuérdame el lunes", C.SNOOZE, "el lunes"),
    ("recuerdame mañana", C.SNOOZE, "mañana"),
    ("Recuérdame la semana que viene", C.SNOOZE, "la semana que viene"),
    ("recuérdame a fin de mes", C.SNOOZE, "a fin de mes"),
    ("posponer 1w", C.SNOOZE, "1w"),
    ("Todavía no - recuérdame en 3 días", C.SNOOZE, "en 3 días"),
    ("más tarde 3d" + SPANISH_OUTLOOK, C.SNOOZE, "3d"),
    ("parar", C.STOP, ""),
    ("Parar, por favor", C.STOP, ""),
    ("detener", C.STOP, ""),
    ("stop" + SPANISH_QUOTE, C.STOP, ""),
    ("nota: lo llamé", C.NOTE, "lo llamé"),
    ("Nota - está de viaje", C.NOTE, "está de viaje"),
    ("ayuda", C.HELP, ""),
    ("¿Ayuda?", C.HELP, ""),
    ("reabrir", C.REOPEN, ""),
    ("reanudar", C.REOPEN, ""),
]  # fmt: skip

# No command: prose about the loop is a note; short puzzles and questions are UNKNOWN; a reply
# with nothing new (only a quote or a signature) is nothing at all (None below).
NOT_COMMANDS: list[tuple[str, CommandName, str]] = [
    ("I tried the annual plan first and it worked", C.NOTE,
     "I tried the annual plan first and it worked"),
    ("Thanks, I will try it next week for sure", C.NOTE,
     "Thanks, I will try it next week for sure"),
    ("stopped by his office and we talked", C.NOTE, "stopped by his office and we talked"),
    ("stop by my office tomorrow", C.NOTE, "stop by my office tomorrow"),
    ("Great advice! I'll try it next week.", C.NOTE, "Great advice! I'll try it next week."),
    ("He suggested I talk to his colleague first", C.NOTE,
     "He suggested I talk to his colleague first"),
    ("I haven't done it yet, will try next week", C.NOTE,
     "I haven't done it yet, will try next week"),
    ("Nearly done, will finish it tomorrow", C.NOTE, "Nearly done, will finish it tomorrow"),
    ("Helpful advice, I tried the first idea already", C.NOTE,
     "Helpful advice, I tried the first idea already"),
    ("Told him about the results of the pilot", C.NOTE,
     "Told him about the results of the pilot"),
    ("Done with the first part, the rest is next week", C.NOTE,
     "Done with the first part, the rest is next week"),
    ("Ich habe ihn gestern angerufen und es lief gut", C.NOTE,
     "Ich habe ihn gestern angerufen und es lief gut"),
    ("Je l'ai appelé hier et tout s'est bien passé", C.NOTE,
     "Je l'ai appelé hier et tout s'est bien passé"),
    ("Lo llamé ayer y todo salió bien", C.NOTE, "Lo llamé ayer y todo salió bien"),
    ("Hi,\n\nI met him for coffee and we talked it through.\n\nAda", C.NOTE,
     "I met him for coffee and we talked it through."),
    ("Remind me what he said about pricing", C.NOTE, "Remind me what he said about pricing"),
    ("notebook arrived", C.UNKNOWN, "notebook arrived"),
    ("snoozefest", C.UNKNOWN, "snoozefest"),
    ("doneness", C.UNKNOWN, "doneness"),
    ("dne", C.UNKNOWN, "dne"),
    ("ok", C.UNKNOWN, "ok"),
    ("Thanks!", C.UNKNOWN, "Thanks!"),
    ("not yet", C.UNKNOWN, "not yet"),
    ("Not done yet", C.UNKNOWN, "Not done yet"),
    ("not yet done", C.UNKNOWN, "not yet done"),
    ("almost done", C.UNKNOWN, "almost done"),
    ("undone", C.UNKNOWN, "undone"),
    ("Don't stop", C.UNKNOWN, "Don't stop"),
    ("nope", C.UNKNOWN, "nope"),
    ("helpful, thanks", C.UNKNOWN, "helpful, thanks"),
    ("stopwatch", C.UNKNOWN, "stopwatch"),
    ("notably", C.UNKNOWN, "notably"),
    ("Done's fine", C.UNKNOWN, "Done's fine"),
    ("Should I snooze this one?", C.UNKNOWN, "Should I snooze this one?"),
    ("what should I do now?", C.UNKNOWN, "what should I do now?"),
    ("What does this mean?", C.UNKNOWN, "What does this mean?"),
    ("Can you remind me what he said?", C.UNKNOWN, "Can you remind me what he said?"),
    ("remind me about it", C.UNKNOWN, "remind me about it"),
    ("faithful", C.UNKNOWN, "faithful"),
    ("notes", C.UNKNOWN, "notes"),
    ("listopad", C.UNKNOWN, "listopad"),
    ("hechos", C.UNKNOWN, "hechos"),
    ("erledigte Sachen", C.UNKNOWN, "erledigte Sachen"),
    ("noch nicht", C.UNKNOWN, "noch nicht"),
    ("Noch nicht erledigt", C.UNKNOWN, "Noch nicht erledigt"),
    ("pas encore", C.UNKNOWN, "pas encore"),
    ("Pas encore fait", C.UNKNOWN, "Pas encore fait"),
    ("todavía no", C.UNKNOWN, "todavía no"),
    ("¿Qué significa esto?", C.UNKNOWN, "¿Qué significa esto?"),
    ("Was soll ich tun?", C.UNKNOWN, "Was soll ich tun?"),
    ("faites-le", C.UNKNOWN, "faites-le"),
]  # fmt: skip

PHRASINGS = ENGLISH + GERMAN + FRENCH + SPANISH + NOT_COMMANDS


@pytest.mark.parametrize(("reply", "name", "text"), PHRASINGS)
def test_replies_people_write(reply: str, name: CommandName, text: str) -> None:
    assert parse_command(reply) == Command(name, text)


def test_the_table_is_a_few_hundred_phrasings() -> None:
    assert len(PHRASINGS) + len(SEVERAL) + len(NOTHING_NEW) >= 300
    assert len({reply for reply, _, _ in PHRASINGS}) == len(PHRASINGS), "no phrasing twice"


# Several commands in one reply: one per line (syzbot-style), or joined on one line.
SEVERAL: list[tuple[str, list[Command]]] = [
    ("Hi,\n\ndone - signed up\nsnooze 2w\n\nthanks!\n\n> the reminder\n> stop",
     [Command(C.ACTED, "signed up"), Command(C.SNOOZE, "2w")]),
    ("done\nreported back", [Command(C.ACTED), Command(C.REPORTED)]),
    ("reported\ngave back: sent him the paper",
     [Command(C.REPORTED), Command(C.GAVE_BACK, "sent him the paper")]),
    ("done - booked it\nnote: he was glad\n\nBest,\nAda\nstop",
     [Command(C.ACTED, "booked it"), Command(C.NOTE, "he was glad")]),
    ("done and reported back", [Command(C.ACTED), Command(C.REPORTED)]),
    ("Done & reported!", [Command(C.ACTED), Command(C.REPORTED)]),
    ("done, reported back", [Command(C.ACTED), Command(C.REPORTED)]),
    ("done and gave back a coffee", [Command(C.ACTED), Command(C.GAVE_BACK, "a coffee")]),
    ("done - snooze 2w", [Command(C.ACTED), Command(C.SNOOZE, "2w")]),
    ("erledigt und berichtet", [Command(C.ACTED), Command(C.REPORTED)]),
    ("fait et rapporté", [Command(C.ACTED), Command(C.REPORTED)]),
    ("hecho y informado", [Command(C.ACTED), Command(C.REPORTED)]),
    ("erledigt\nspäter 2 Wochen", [Command(C.ACTED), Command(C.SNOOZE, "2 wochen")]),
    ("Fait !\nnote : il était ravi", [Command(C.ACTED), Command(C.NOTE, "il était ravi")]),
    ("¡Hecho!\nmás tarde 1w", [Command(C.ACTED), Command(C.SNOOZE, "1w")]),
    ("I talked to him last week.\ndone", [Command(C.ACTED)]),
    ("done\n\nI signed up for the course, it starts Monday.", [Command(C.ACTED)]),
    ("done\nstop" + GMAIL, [Command(C.ACTED), Command(C.STOP)]),
    ("\n> acted\n\nstop\nnote: bottom-posted",
     [Command(C.STOP), Command(C.NOTE, "bottom-posted")]),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "expected"), SEVERAL)
def test_several_commands(reply: str, expected: list[Command]) -> None:
    assert parse_commands(reply) == expected


# Nothing new to read: no command and no note.
NOTHING_NEW: list[str] = [
    GMAIL.strip(),
    APPLE.strip(),
    "Sent from my iPhone",
    "-- \nAda Lovelace",
    "> done\n> snooze 2w",
    "\n\n\n",
]


@pytest.mark.parametrize("reply", NOTHING_NEW)
def test_nothing_new(reply: str) -> None:
    assert parse_commands(reply) == []


def test_unknown_line_is_bounded() -> None:
    command = parse_command("x" * 10_000)
    assert command is not None and command.name is C.UNKNOWN
    assert len(command.argument) <= 500


PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 7 January 2026, 15:00 UTC (16:00 in Paris, 10:00 in New York).
NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("argument", "tz", "expected"),
    [
        ("3d", PARIS, NOW + timedelta(days=3)),
        ("36h", PARIS, NOW + timedelta(hours=36)),
        ("2w", PARIS, NOW + timedelta(weeks=2)),
        ("for 3 days", PARIS, NOW + timedelta(days=3)),
        ("tomorrow", PARIS, datetime(2026, 1, 8, 8, 0, tzinfo=UTC)),
        ("tomorrow", NEW_YORK, datetime(2026, 1, 8, 14, 0, tzinfo=UTC)),
        ("friday", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("until friday", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("Until Monday", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("wednesday", PARIS, datetime(2026, 1, 14, 8, 0, tzinfo=UTC)),  # strictly after today
        ("next week", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("until dec 1", PARIS, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("December 1st", NEW_YORK, datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("1 dec", PARIS, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("jan 2", PARIS, datetime(2027, 1, 2, 8, 0, tzinfo=UTC)),  # passed: next year
        ("until 2026-12-01", PARIS, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("until 2026-07-01", PARIS, datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),  # summer time
        ("a week", PARIS, NOW + timedelta(weeks=1)),
        ("2 weeks please", PARIS, NOW + timedelta(weeks=2)),
        ("ten days", PARIS, NOW + timedelta(days=10)),
        ("in a couple of days", PARIS, NOW + timedelta(days=2)),
        ("a few weeks", PARIS, NOW + timedelta(weeks=3)),
        ("one month", PARIS, NOW + timedelta(days=30)),
        ("next monday", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("on friday please", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("till the end of the month", PARIS, datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("end of month", NEW_YORK, datetime(2026, 1, 31, 14, 0, tzinfo=UTC)),
        ("end of week", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("at the end of the month", PARIS, datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("next month", PARIS, NOW + timedelta(days=30)),
        # German, French, Spanish
        ("1 woche", PARIS, NOW + timedelta(weeks=1)),
        ("in einer woche", PARIS, NOW + timedelta(weeks=1)),
        ("in 2 wochen bitte", PARIS, NOW + timedelta(weeks=2)),
        ("in 3 tagen", PARIS, NOW + timedelta(days=3)),
        ("zwei tage", PARIS, NOW + timedelta(days=2)),
        ("ein paar tage", PARIS, NOW + timedelta(days=3)),
        ("morgen", PARIS, datetime(2026, 1, 8, 8, 0, tzinfo=UTC)),
        ("am montag", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("bis freitag", NEW_YORK, datetime(2026, 1, 9, 14, 0, tzinfo=UTC)),
        ("nächste woche", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("nächsten montag", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("bis ende des monats", PARIS, datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("dans 2 semaines", PARIS, NOW + timedelta(weeks=2)),
        ("dans une semaine", PARIS, NOW + timedelta(weeks=1)),
        ("dans trois jours", PARIS, NOW + timedelta(days=3)),
        ("demain", PARIS, datetime(2026, 1, 8, 8, 0, tzinfo=UTC)),
        ("lundi", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("lundi prochain", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("la semaine prochaine", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("à la fin du mois", PARIS, datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("jusqu'à vendredi", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("jusqu’à vendredi svp", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("en 2 semanas", PARIS, NOW + timedelta(weeks=2)),
        ("en una semana", PARIS, NOW + timedelta(weeks=1)),
        ("en 3 días", PARIS, NOW + timedelta(days=3)),
        ("mañana", PARIS, datetime(2026, 1, 8, 8, 0, tzinfo=UTC)),
        ("el lunes", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("el próximo viernes", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("la semana que viene", PARIS, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)),
        ("hasta el viernes por favor", PARIS, datetime(2026, 1, 9, 8, 0, tzinfo=UTC)),
        ("a fin de mes", PARIS, datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("until sept 1", PARIS, datetime(2026, 9, 1, 7, 0, tzinfo=UTC)),  # not seven
    ],
)
def test_resolve_snooze(argument: str, tz: ZoneInfo, expected: datetime) -> None:
    result = resolve_snooze(argument, NOW, tz)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "argument",
    [
        "",
        "until",
        "someday",
        "3x",
        "friday-ish",
        "2025-01-01",
        "feb 30",
        "99999999999999d",
        "13/13",
        "a fortnight",
        "later",
        "plus tard",
        "irgendwann",
    ],
)
def test_resolve_snooze_errors(argument: str) -> None:
    with pytest.raises(DurationError):
        resolve_snooze(argument, NOW, PARIS)


@pytest.mark.parametrize(
    "argument",
    sorted({a for _, name, a in PHRASINGS if name is C.SNOOZE and a not in ("", "svp")}),
)
def test_every_snooze_in_the_table_is_a_time_ahead(argument: str) -> None:
    assert resolve_snooze(argument, NOW, PARIS) > NOW


def test_resolve_snooze_accepts_naive_now_as_utc() -> None:
    assert resolve_snooze("1d", NOW.replace(tzinfo=None), PARIS) == NOW + timedelta(days=1)
