#!/usr/bin/env python3
"""Django's command-line utility: runs the TOM's management commands, our jobs among them."""
import os
import sys


def main():
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mytom.settings')
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A configuration mistake is the operator's to fix: say what it is, not where it was raised.
        message = ' '.join(str(error).split())  # some of Django's span several lines
        sys.stderr.write(f'configuration error: {message}\n')
        sys.exit(2)


if __name__ == '__main__':
    main()
