"""The charts of the Jobs pages."""
from django.conf import settings

from myapp.models import JobRun


def duration_chart(runs, summaries=True):
    """A plotly chart of the runs' durations over time, one colour per outcome, as an HTML
    div that draws itself once plotly's script is loaded."""
    # Imported here: plotly is heavy, and only this page needs it.
    import plotly.graph_objects as go
    from plotly import offline

    figure = go.Figure()
    for outcome in JobRun.Outcome:
        points = [run for run in runs if run.outcome == outcome and run.duration is not None]
        if points:
            figure.add_trace(go.Scatter(
                x=[run.started_at for run in points], y=[run.duration for run in points], mode='markers',
                name=outcome.label, marker={'color': OUTCOME_COLOURS[outcome], 'size': 9},
                text=[run.summary if summaries else run.outcome for run in points],
            ))
    figure.update_layout(height=320, margin={'l': 50, 'r': 20, 't': 20, 'b': 40}, yaxis_title='seconds',
                         template=settings.PLOTLY_THEME, legend={'orientation': 'h'})
    return offline.plot(figure, output_type='div', include_plotlyjs=False, show_link=False)


OUTCOME_COLOURS = {
    JobRun.Outcome.SUCCEEDED: '#198754', JobRun.Outcome.FAILED: '#dc3545', JobRun.Outcome.TIMED_OUT: '#fd7e14',
    JobRun.Outcome.LOST: '#6f42c1', JobRun.Outcome.SKIPPED: '#6c757d', JobRun.Outcome.RUNNING: '#0d6efd',
}
