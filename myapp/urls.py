"""The Jobs pages, and the API of the job runtime (under /api/, beside TOM Toolkit's)."""
from django.urls import path

from myapp import views

app_name = 'jobs'

urlpatterns = [
    path('', views.JobListView.as_view(), name='list'),
    path('requests/<int:pk>/', views.run_request, name='request'),
    # Job names are commands with their arguments: any text, slashes included.
    path('<path:name>/', views.JobDetailView.as_view(), name='detail'),
]

api_urlpatterns = [
    path('', views.JobsAPIView.as_view(), name='api-list'),
    path('tasks/<uuid:pk>/retry/', views.RetryTaskView.as_view(), name='retry-task'),
    path('targets/<int:pk>/download/', views.DownloadNowView.as_view(), name='download-now'),
    path('streams/<str:name>/pause/', views.StreamPauseView.as_view(), name='pause-stream'),
    path('streams/<str:name>/resume/', views.StreamPauseView.as_view(resume=True), name='resume-stream'),
    path('dead-letters/<int:pk>/retry/', views.RetryDeadLetterView.as_view(), name='retry-dead-letter'),
    path('<path:name>/run/', views.RunNowView.as_view(), name='run-now'),
    path('<path:name>/pause/', views.PauseView.as_view(), name='pause'),
    path('<path:name>/resume/', views.PauseView.as_view(resume=True), name='resume'),
]
