"""BACKUP_KEEP, the rule pruning follows: `7 daily, 4 weekly, 12 monthly` as restic's
--keep-daily 7 --keep-weekly 4 --keep-monthly 12. Imported by the settings: no Django here."""
import re

PERIODS = ('last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly')
PART = re.compile(r'^(\d+)\s+(' + '|'.join(PERIODS) + r')$')


def parse_keep(text):
    """{period: count} from text; ValueError with a one-line reason otherwise."""
    rules = {}
    for part in filter(None, (part.strip() for part in str(text).split(','))):
        match = PART.match(part)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f'{part!r} is not a rule: write a count and one of {", ".join(PERIODS)}, '
                             'e.g. "7 daily, 4 weekly, 12 monthly"')
        rules[match.group(2)] = int(match.group(1))
    if not rules:
        raise ValueError('no rule: pruning would delete every snapshot; e.g. "7 daily, 4 weekly, 12 monthly"')
    return rules


def restic_arguments(rules):
    return [argument for period, count in rules.items() for argument in (f'--keep-{period}', str(count))]
